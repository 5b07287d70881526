// The DynamoDB consent store and the webhook's pre-event policy on DynamoDB Local: the conditional
// writes implement the same state machine as the pure domain (checked case by case, differentially and
// under concurrency), consent records are write-once, and the onParticipantAdd check answers from one
// Query, fail-closed, with p99 well under 100 ms.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { consentPreEventPolicy, PreEventReasons } from "../../lib/adapters/consent-pre-event-policy.ts";
import {
  consentStateReader,
  dynamoConsentStore,
  recordPartition,
  recordSortKey,
} from "../../lib/adapters/consent-store.ts";
import type { ConsentStore } from "../../lib/app/compliance.ts";
import {
  AllSenders,
  applyConsentChange,
  type ConsentChange,
  type ConsentRecord,
  type ConsentSubject,
  type SuppressionState,
} from "../../lib/domain/consent.ts";
import type { FormParams } from "../../lib/domain/form-body.ts";
import type { PreEvent } from "../../lib/domain/webhook-events.ts";
import { type LocalAws, localAws } from "../support/local-aws.ts";

let aws: LocalAws;
let store: ConsentStore;
let tableName: string;

before(async () => {
  aws = await localAws();
  tableName = aws.resources.tableNames.consent;
  store = dynamoConsentStore({ client: aws.clients.dynamodb, tableName, now: () => 1 });
});

let people = 0;
const newSubject = (channel: ConsentSubject["channel"] = "sms"): ConsentSubject => {
  people += 1;
  return { tenant: "acme", channel, address: `+1415555${String(people).padStart(4, "0")}` };
};

const change = (
  action: ConsentChange["action"],
  eventAt: number,
  eventId = `${action}-${eventAt}`,
): ConsentChange => ({
  action,
  eventAt,
  eventId,
  keyword: action === "opt-out" ? "STOP" : undefined,
  source: "messaging-inbound",
});

const Sender = "+15005550006";

describe("suppression state (conditional writes)", () => {
  test("first STOP applies and is a status change; its replay is recognised as a replay", async () => {
    const subject = newSubject();
    const first = await store.apply(subject, Sender, change("opt-out", 1000));
    assert.equal(first.outcome, "applied");
    assert.equal(first.statusChanged, true);
    const replay = await store.apply(subject, Sender, change("opt-out", 1000));
    assert.equal(replay.outcome, "replayed");
    assert.equal(replay.statusChanged, true, "previousStatus was captured atomically with the change");
    assert.equal(replay.state.status, "opted-out");
  });

  test("an older START processed after a STOP is superseded; a newer one applies", async () => {
    const subject = newSubject();
    await store.apply(subject, Sender, change("opt-out", 2000));
    const older = await store.apply(subject, Sender, change("opt-in", 1000));
    assert.equal(older.outcome, "superseded");
    assert.equal(older.state.status, "opted-out");
    const newer = await store.apply(subject, Sender, change("opt-in", 3000));
    assert.equal(newer.outcome, "applied");
    assert.equal(newer.statusChanged, true);
    assert.equal(newer.state.previousStatus, "opted-out");
    assert.equal(newer.state.keyword, undefined, "a change without keyword clears the old one");
  });

  test("STOP and START at the same millisecond: opt-out wins whichever is written first", async () => {
    for (const order of [["opt-out", "opt-in"] as const, ["opt-in", "opt-out"] as const]) {
      const subject = newSubject();
      for (const action of order) await store.apply(subject, Sender, change(action, 5000));
      const [state] = await store.states(subject);
      assert.equal(state?.status, "opted-out");
    }
  });

  test("concurrent STOPs and STARTs converge on the newest event; exactly that one reports applied last", async () => {
    const subject = newSubject();
    const changes = Array.from({ length: 24 }, (_, index) =>
      change(index % 2 === 0 ? "opt-out" : "opt-in", 10_000 + ((index * 7) % 24), `ev-${index}`),
    );
    const newest = changes.reduce((best, item) =>
      applyConsentChange("x", undefined, item).state.version >
      applyConsentChange("x", undefined, best).state.version
        ? item
        : best,
    );
    const decisions = await Promise.all(changes.map((item) => store.apply(subject, Sender, item)));
    const [state] = await store.states(subject);
    assert.equal(state?.eventId, newest.eventId);
    assert.equal(decisions[changes.indexOf(newest)]?.outcome, "applied");
  });

  test("the store and the pure state machine agree on every sequence (differential)", async () => {
    const events = fc.uniqueArray(
      fc.record({
        action: fc.constantFrom("opt-out" as const, "opt-in" as const),
        eventAt: fc.integer({ min: 0, max: 20 }),
        eventId: fc.stringMatching(/^[a-z]{1,3}$/),
      }),
      { minLength: 1, maxLength: 6, selector: (event) => event.eventId },
    );
    await fc.assert(
      fc.asyncProperty(events, fc.array(fc.nat(5), { maxLength: 3 }), async (list, replays) => {
        const sequence = [...list, ...replays.flatMap((index) => list[index % list.length] ?? [])];
        const subject = newSubject();
        let reference: SuppressionState | undefined;
        for (const item of sequence) {
          const next = { ...item, keyword: undefined, source: "messaging-inbound" as const };
          const expected = applyConsentChange(Sender, reference, next);
          reference = expected.state;
          const actual = await store.apply(subject, Sender, next);
          assert.equal(actual.outcome, expected.outcome);
          assert.equal(actual.statusChanged, expected.statusChanged);
          assert.deepEqual(actual.state, expected.state);
        }
      }),
      { numRuns: 40 },
    );
  });

  test("states() returns every scope of one person and nothing else", async () => {
    const subject = newSubject();
    const other = newSubject();
    await store.apply(subject, Sender, change("opt-out", 1));
    await store.apply(subject, AllSenders, change("opt-in", 2));
    await store.apply(other, Sender, change("opt-out", 3));
    await store.record(recordOf(subject, "opt-out", 1));
    const states = await store.states(subject);
    assert.deepEqual(states.map((s) => s.scope).sort(), [AllSenders, Sender].sort());
    assert.deepEqual(await store.states({ ...subject, channel: "whatsapp" }), []);
  });
});

const recordOf = (
  subject: ConsentSubject,
  action: ConsentRecord["action"],
  eventAt: number,
): ConsentRecord => ({
  subject,
  action,
  eventId: `msg-in:SM${eventAt}`,
  eventAt,
  recordedAt: eventAt + 5,
  source: "messaging-inbound",
  keyword: "STOP",
  decidedBy: "keyword-list",
  scope: Sender,
  sender: { proxy: Sender, messagingServiceSid: undefined },
  messageSid: `SM${eventAt}`,
  conversationSid: undefined,
  expiresAt: Math.floor(eventAt / 1000) + 86_400 * 1830,
});

describe("consent records", () => {
  test("are written once with the evidence fields; a replay keeps the first and returns done effects", async () => {
    const subject = newSubject();
    const record = recordOf(subject, "opt-out", 1_790_000_000_000);
    assert.deepEqual([...(await store.record(record)).effectsDone], []);
    await store.markDone(record, "removed:CH1");
    await store.markDone(record, "confirmed");
    await store.markDone(record, "confirmed");
    const replay = await store.record({ ...record, recordedAt: 9, keyword: "CHANGED" });
    assert.deepEqual([...replay.effectsDone].sort(), ["confirmed", "removed:CH1"]);
    const { Item } = await aws.clients.dynamodb.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: recordPartition(subject) }, sk: { S: recordSortKey(record) } },
      }),
    );
    assert.equal(Item?.sk?.S, `2026-09-21T14:13:20.000Z#${record.eventId}`);
    assert.equal(Item?.keyword?.S, "STOP", "the first write stands");
    assert.equal(Item?.recordedAt?.N, String(record.recordedAt));
    assert.equal(Item?.action?.S, "opt-out");
    assert.equal(Item?.senderNumber?.S, Sender);
    assert.equal(Item?.expiresAt?.N, String(record.expiresAt));
  });

  test("markDone on a record that does not exist fails instead of creating a fragment", async () => {
    await assert.rejects(store.markDone(recordOf(newSubject(), "opt-out", 5), "confirmed"));
  });
});

// ---- Pre-event policy ----------------------------------------------------------------------------------

const preEvent: PreEvent = { type: "pre", eventType: "onParticipantAdd", accountSid: undefined };
const participantAdd = (address: string, proxy = Sender): FormParams => ({
  EventType: "onParticipantAdd",
  ConversationSid: `CH${"c".repeat(32)}`,
  "MessagingBinding.Address": address,
  "MessagingBinding.ProxyAddress": proxy,
});

describe("onParticipantAdd pre-event policy", () => {
  const tenants = { defaultTenant: "acme", senders: {}, tenants: {} };

  test("rejects a suppressed address, allows others, chat identities and other hooks", async () => {
    const policy = consentPreEventPolicy({
      reader: consentStateReader({ client: aws.clients.dynamodb, tableName }),
      tenants,
    });
    const suppressed = newSubject("whatsapp");
    await store.apply(suppressed, Sender, change("opt-out", 1));
    const reopened = newSubject();
    await store.apply(reopened, Sender, change("opt-out", 1));
    await store.apply(reopened, Sender, change("opt-in", 2));

    assert.deepEqual(
      await policy.decide(preEvent, participantAdd(`whatsapp:${suppressed.address}`, `whatsapp:${Sender}`)),
      { allow: false, reason: PreEventReasons.optedOut },
    );
    assert.deepEqual(await policy.decide(preEvent, participantAdd(reopened.address)), { allow: true });
    assert.deepEqual(
      await policy.decide(preEvent, participantAdd(suppressed.address)),
      { allow: true },
      "SMS is another channel",
    );
    assert.deepEqual(
      await policy.decide(
        preEvent,
        participantAdd(`whatsapp:${suppressed.address}`, "whatsapp:+15005550099"),
      ),
      { allow: true },
      "sender scope: another number may still add them",
    );
    assert.deepEqual(await policy.decide(preEvent, { EventType: "onParticipantAdd", Identity: "agent" }), {
      allow: true,
    });
    assert.deepEqual(
      await policy.decide(
        { ...preEvent, eventType: "onMessageAdd" },
        participantAdd(`whatsapp:${suppressed.address}`),
      ),
      { allow: true },
    );
  });

  test("fails closed when the store cannot answer", async () => {
    const broken = new DynamoDBClient({
      region: "us-east-1",
      endpoint: aws.endpoints.dynamodb,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const errors: unknown[] = [];
    const policy = consentPreEventPolicy({
      reader: consentStateReader({ client: broken, tableName: "no-such-table" }),
      tenants,
      onError: (error) => errors.push(error),
    });
    assert.deepEqual(await policy.decide(preEvent, participantAdd("+14155550100")), {
      allow: false,
      reason: PreEventReasons.unavailable,
    });
    assert.equal(errors.length, 1);
    broken.destroy();
  });

  test("fails closed within its timeout when the store hangs", async () => {
    const hanging = {
      states: (_: ConsentSubject, options?: { signal?: AbortSignal }) =>
        new Promise<never>((_, reject) =>
          options?.signal?.addEventListener("abort", () => reject(options.signal?.reason)),
        ),
    };
    const policy = consentPreEventPolicy({ reader: hanging, tenants, timeoutMs: 50 });
    const started = performance.now();
    const decision = await policy.decide(preEvent, participantAdd("+14155550100"));
    assert.equal(decision.allow, false);
    assert.ok(performance.now() - started < 1000);
  });

  test("answers from DynamoDB Local with p99 under 100 ms", async () => {
    const policy = consentPreEventPolicy({
      reader: consentStateReader({ client: aws.clients.dynamodb, tableName }),
      tenants,
    });
    const suppressed = newSubject();
    await store.apply(suppressed, Sender, change("opt-out", 1));
    for (let i = 0; i < 20; i += 1) await policy.decide(preEvent, participantAdd(suppressed.address));
    const samples: number[] = [];
    for (let i = 0; i < 400; i += 1) {
      const address = i % 2 === 0 ? suppressed.address : `+1415666${String(i).padStart(4, "0")}`;
      const started = performance.now();
      const decision = await policy.decide(preEvent, participantAdd(address));
      samples.push(performance.now() - started);
      assert.equal(decision.allow, i % 2 !== 0);
    }
    samples.sort((a, b) => a - b);
    const p50 = samples[Math.floor(samples.length * 0.5)] ?? Number.NaN;
    const p99 = samples[Math.floor(samples.length * 0.99)] ?? Number.NaN;
    console.log(
      `pre-event consent check on DynamoDB Local: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
    );
    assert.ok(p99 < 100, `p99 ${p99} ms`);
  });
});
