// The stale-conversation closer end to end on the local stack: the built closer bundle runs as a Lambda
// (real time, real remaining-time budget) against DynamoDB Local and the Twilio emulator. Stale
// conversations are real emulator conversations with registry rows two days old; the emulator injects
// 20429 bursts; one conversation wakes up while the run is under way; a short Lambda timeout makes a run
// stop early and the next one resume from the stored cursor.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { dynamoCloserCursorStore } from "../../lib/adapters/closer-cursor-store.ts";
import { activityShardOf, dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import type { CloserSummary } from "../../lib/app/closer.ts";
import type { Invocation } from "../../lib/local/lambda-runner.ts";
import type { LocalStack } from "../../lib/local/stack.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import { type E2eStack, startE2eStack } from "../support/e2e-stack.ts";

const day = 24 * 60 * 60_000;
/** Short enough that 500 closes at 25/s (20 s) cannot fit before the 15 s safety margin. */
const closerTimeoutSeconds = 30;

let e2e: E2eStack;
let stack: LocalStack;
let emulator: TwilioEmulator;
let registry: ReturnType<typeof dynamoConversationRegistry>;

before(async () => {
  e2e = await startE2eStack(["closer"], { functions: { closer: { timeoutSeconds: closerTimeoutSeconds } } });
  ({ stack, emulator } = e2e);
  const table = stack.stackInfo.aws.tables.conversations;
  assert.ok(table !== undefined);
  registry = dynamoConversationRegistry(e2e.aws.dynamodb, table);
});

after(async () => {
  await e2e?.stop();
});

/** Real emulator conversations with registry rows, oldest first; `idleMs` old (default two days). */
const conversations = async (count: number, idleMs = 2 * day): Promise<string[]> => {
  const client = e2e.sdk;
  const sids: string[] = [];
  for (let start = 0; start < count; start += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, count - start) }, () =>
        client.conversations.v1.conversations.create({ friendlyName: "closer e2e" }),
      ),
    );
    sids.push(...batch.map((conversation) => conversation.sid));
  }
  const now = Date.now();
  await registry.seed(
    sids.map((conversationSid, n) => ({
      conversationSid,
      tenantId: "default",
      state: "active",
      lastActivityAt: now - idleMs - (count - n) * 1000,
      stateAt: now - idleMs - count * 1000,
      priority: undefined,
    })),
  );
  return sids;
};

const summaryOf = (invocation: Invocation): CloserSummary => {
  const { result } = invocation;
  assert.equal(result.status, "ok", JSON.stringify(result));
  if (result.status !== "ok") throw new Error("unreachable");
  assert.equal(typeof result.payload, "object");
  return result.payload as CloserSummary;
};

const twilioState = (sid: string) => emulator.state.conversation(sid)?.state;

describe("closer on the local stack", () => {
  test("a dry run triggered over HTTP lists the stale ones and closes nothing; the real run closes exactly those", async () => {
    const stale = await conversations(30);
    const fresh = await conversations(5, 60_000);

    const response = await fetch(`${stack.apiUrl}/_local/schedule/closer?dryRun=true`, { method: "POST" });
    assert.equal(response.status, 200);
    const dry = (await response.json()) as CloserSummary;
    assert.equal(dry.dryRun, true);
    assert.deepEqual(new Set(dry.wouldClose), new Set(stale));
    assert.equal(dry.closed, 0);
    assert.ok(
      [...stale, ...fresh].every((sid) => twilioState(sid) === "active"),
      "nothing closed in Twilio",
    );
    for (const sid of stale.slice(0, 3)) assert.equal((await registry.get(sid))?.state, "active");

    const real = summaryOf(await stack.runSchedule("closer"));
    assert.equal(real.closed, 30);
    assert.ok(stale.every((sid) => twilioState(sid) === "closed"));
    assert.ok(fresh.every((sid) => twilioState(sid) === "active"));
    assert.equal((await registry.get(stale[0] ?? ""))?.closeOutcome, "closed-by-closer");
  });

  test("20429 bursts from the emulator are absorbed, and conversations Twilio already closed count as done", async () => {
    const stale = await conversations(60);
    const client = e2e.sdk;
    const closedByTimer = stale.slice(0, 2);
    for (const sid of closedByTimer)
      await client.conversations.v1.conversations(sid).update({ state: "closed" });
    emulator.faults.inject({
      status: 429,
      count: 40,
      match: { method: "POST", pathPrefix: "/v1/Conversations" },
    });

    const summary = summaryOf(await stack.runSchedule("closer"));
    assert.equal(emulator.faults.pending().failures, 0, "the whole burst hit the closer");
    assert.equal(summary.throttled, 40);
    assert.equal(summary.failed, 0);
    assert.equal(summary.closed, 60);
    assert.equal(summary.alreadyClosed, 2);
    assert.ok(stale.every((sid) => twilioState(sid) === "closed"));
    assert.equal((await registry.get(closedByTimer[0] ?? ""))?.closeOutcome, "already-closed");
  });

  test("a conversation that becomes active between selection and close is left open", async () => {
    const stale = await conversations(300);
    // The run reads shard by shard, oldest first within a shard (one page each here). Once the first row
    // of the fullest shard is closed, its page has been read: its newest row is selected but, with at
    // most 10 closes in flight and 25 mutations/s, still about a second away from being closed.
    const byShard = new Map<string, string[]>();
    for (const sid of stale) {
      byShard.set(activityShardOf(sid), [...(byShard.get(activityShardOf(sid)) ?? []), sid]);
    }
    const shardRows = [...byShard.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    const [firstOfShard] = shardRows;
    const target = shardRows.at(-1);
    assert.ok(firstOfShard !== undefined && target !== undefined && shardRows.length > 25);

    const run = stack.runSchedule("closer");
    const deadline = Date.now() + 60_000;
    while (twilioState(firstOfShard) !== "closed") {
      assert.ok(Date.now() < deadline, "the closer never reached the last shard");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(twilioState(target), "active", "the target must still be open when it wakes up");
    // What a customer reply does: Twilio has the message, and the mirror moves our activity record.
    const client = e2e.sdk;
    await client.conversations.v1
      .conversations(target)
      .messages.create({ author: "+14155550100", body: "still there?" });
    await registry.touch({ conversationSid: target, tenantId: "default", at: Date.now() });

    const summary = summaryOf(await run);
    assert.equal(summary.closed, 299);
    assert.equal(summary.skipped, 1);
    assert.equal((summary.skippedBy["active-again"] ?? 0) + (summary.skippedBy["active-in-twilio"] ?? 0), 1);
    assert.equal(twilioState(target), "active");
    assert.equal((await registry.get(target))?.state, "active");
  });

  test("a run that runs out of Lambda time stops with a stored cursor; the next run resumes and finishes", async () => {
    const stale = await conversations(500);
    const cursors = dynamoCloserCursorStore(e2e.aws.dynamodb, stack.stackInfo.aws.tables.conversations ?? "");

    const first = summaryOf(await stack.runSchedule("closer"));
    assert.equal(first.stoppedBy, "time");
    assert.ok(first.closed > 100 && first.closed < 500, `first run closed ${first.closed}`);
    assert.ok(first.durationMs < closerTimeoutSeconds * 1000, "stopped before the Lambda timeout");
    assert.equal(await cursors.load(), first.cursor);
    assert.ok(first.cursor !== undefined);

    const second = summaryOf(await stack.runSchedule("closer"));
    assert.equal(second.startedFrom, "stored-cursor");
    assert.equal(second.stoppedBy, "pass-complete");
    assert.equal(first.closed + second.closed, 500);
    assert.ok(stale.every((sid) => twilioState(sid) === "closed"));
    assert.equal(await cursors.load(), undefined);
  });
});
