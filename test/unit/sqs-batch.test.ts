// FIFO partial batches: per-group order, stop-at-first-failure within a group, other groups unaffected.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isPoison, processFifoBatch, type QueueRecord } from "../../lib/app/sqs-batch.ts";

const record = (messageId: string, group: string, eventId = messageId, receiveCount = "1"): QueueRecord => ({
  messageId,
  body: JSON.stringify({ v: 1, eventId, kind: "messaging.inbound", receivedAt: 1, params: {} }),
  attributes: { MessageGroupId: group, ApproximateReceiveCount: receiveCount },
});

test("a failure fails its group from that record on; other groups complete", async () => {
  const seen: string[] = [];
  const result = await processFifoBatch(
    [record("a1", "A"), record("b1", "B"), record("a2", "A"), record("b2", "B"), record("a3", "A")],
    async (envelope) => {
      seen.push(envelope.eventId);
      if (envelope.eventId === "a2") throw new Error("twilio 503");
    },
  );
  assert.deepEqual(result.batchItemFailures, [{ itemIdentifier: "a2" }, { itemIdentifier: "a3" }]);
  assert.deepEqual(seen.sort(), ["a1", "a2", "b1", "b2"], "a3 never ran: it must not overtake a2");
  const skipped = result.outcomes.find((outcome) => outcome.messageId === "a3");
  assert.ok(skipped && !skipped.ok && skipped.skipped);
});

test("records of one group run strictly in order", async () => {
  const order: string[] = [];
  await processFifoBatch([record("1", "G"), record("2", "G"), record("3", "G")], async (envelope) => {
    await new Promise((resolve) => setTimeout(resolve, envelope.eventId === "1" ? 20 : 1));
    order.push(envelope.eventId);
  });
  assert.deepEqual(order, ["1", "2", "3"]);
});

test("a poison record fails alone (then redrive moves it to the DLQ) with its reason", async () => {
  const poison: QueueRecord = { messageId: "p", body: "{not json", attributes: { MessageGroupId: "P" } };
  const result = await processFifoBatch([poison, record("ok", "Q")], async () => undefined);
  assert.deepEqual(result.batchItemFailures, [{ itemIdentifier: "p" }]);
  const outcome = result.outcomes[0];
  assert.ok(outcome && !outcome.ok && isPoison(outcome.error));
});

test("the receive count reaches the handler; an empty batch reports nothing", async () => {
  const counts: number[] = [];
  await processFifoBatch([record("r", "R", "r", "3")], async (_, context) => {
    counts.push(context.receiveCount);
  });
  assert.deepEqual(counts, [3]);
  assert.deepEqual((await processFifoBatch([], async () => undefined)).batchItemFailures, []);
});
