// The closer against the real conversation registry and cursor store on DynamoDB Local, with thousands
// of registry rows of which only a few hundred are stale. Every Query the closer sends is observed
// through SDK middleware: the index is read for the stale rows only (ScannedCount), never the rest.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoCloserCursorStore } from "../../lib/adapters/closer-cursor-store.ts";
import {
  ActivityShards,
  decodeStaleCursor,
  dynamoConversationRegistry,
  encodeStaleCursor,
} from "../../lib/adapters/conversation-registry.ts";
import { type CloserRunSettings, type ConversationCloser, runCloser } from "../../lib/app/closer.ts";
import { systemClock, tokenBucket } from "../../lib/app/rate-limiter.ts";
import type { LatestMessage } from "../../lib/domain/closer.ts";
import { TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import { type LocalAws, localAws } from "../support/local-aws.ts";

const minute = 60_000;
const day = 24 * 60 * minute;

let aws: LocalAws;
let client: DynamoDBClient;
/** ScannedCount of every Query the observed client sent since the last reset. */
let queries: { index: string | undefined; scanned: number; returned: number }[] = [];

before(async () => {
  aws = await localAws();
  client = new DynamoDBClient({
    region: "us-east-1",
    endpoint: aws.endpoints.dynamodb,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === "QueryCommand") {
        const input = args.input as { IndexName?: string };
        const output = result.output as { ScannedCount?: number; Count?: number };
        queries.push({
          index: input.IndexName,
          scanned: output.ScannedCount ?? 0,
          returned: output.Count ?? 0,
        });
      }
      return result;
    },
    { step: "initialize", name: "observeQueries" },
  );
});

let tables = 0;
/** A fresh conversations table per test, so counts never leak between tests. */
const freshTable = async (): Promise<string> => {
  tables += 1;
  const { provisionTables } = await import("../../lib/local/provision.ts");
  const names = await provisionTables(client, `closer${tables}${Date.now().toString(36)}`);
  return names.conversations;
};

const sid = (group: number, n: number) =>
  `CH${group.toString(16).padStart(4, "0")}${n.toString(16).padStart(28, "0")}`;

type Seed = Parameters<ReturnType<typeof dynamoConversationRegistry>["seed"]>[0][number];

const rowsOf = (group: number, count: number, row: (n: number) => Omit<Seed, "conversationSid">): Seed[] =>
  Array.from({ length: count }, (_, n) => ({ conversationSid: sid(group, n), ...row(n) }));

/** In-memory Twilio with no latency: this file is about what the closer reads and writes in DynamoDB. */
const memoryTwilio = () => {
  const closed = new Set<string>();
  const port: ConversationCloser = {
    latestMessage: async (): Promise<LatestMessage | undefined> => undefined,
    postNotice: async () => {},
    close: async (conversationSid) => {
      if (closed.has(conversationSid)) throw new TwilioApiError("closed", { status: 400, code: 50377 });
      closed.add(conversationSid);
    },
  };
  return { port, closed };
};

const settings: CloserRunSettings = {
  policy: {
    defaults: { enabled: true, idleMs: day, neverClosePriorities: ["high"], states: ["active", "inactive"] },
    tenants: {},
  },
  concurrency: 10,
  pageSize: 100,
  closingMessage: undefined,
  verifyWithTwilio: true,
  safetyMarginMs: 1_000,
  claimLeaseMs: 5 * minute,
  retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
};

const closerFor = (tableName: string, twilio: ConversationCloser) => {
  const registry = dynamoConversationRegistry(client, tableName);
  const cursors = dynamoCloserCursorStore(client, tableName);
  const run = (remainingMs: () => number = () => 600_000, maxCloses?: number) =>
    runCloser(
      {
        registry,
        twilio,
        cursors,
        limiter: tokenBucket({ ratePerSecond: 2_000, burst: 50, clock: systemClock }),
        clock: systemClock,
        settings,
      },
      { dryRun: false, cursor: undefined, maxCloses },
      { remainingMs },
    );
  return { registry, cursors, run };
};

const indexScanned = () =>
  queries.filter((query) => query.index === "byActivity").reduce((sum, query) => sum + query.scanned, 0);

describe("closer on DynamoDB Local", () => {
  test("with 6,000 registry rows, a run reads only the 500 stale ones and closes the 300 it may", async () => {
    const tableName = await freshTable();
    const twilio = memoryTwilio();
    const closer = closerFor(tableName, twilio.port);
    const now = Date.now();
    const stale = rowsOf(1, 300, (n) => ({
      tenantId: "acme",
      state: n % 2 === 0 ? "active" : "inactive",
      lastActivityAt: now - day - minute - n * 1000,
      stateAt: now - 3 * day,
      priority: undefined,
    }));
    const protectedStale = rowsOf(2, 200, (n) => ({
      tenantId: "acme",
      state: "active",
      lastActivityAt: now - 2 * day - n,
      stateAt: now - 3 * day,
      priority: "high",
    }));
    const fresh = rowsOf(3, 4_500, (n) => ({
      tenantId: "acme",
      state: "active",
      lastActivityAt: now - (n % 1_000) * minute,
      stateAt: now - 3 * day,
      priority: undefined,
    }));
    const closedLongAgo = rowsOf(4, 1_000, (n) => ({
      tenantId: "acme",
      state: "closed",
      lastActivityAt: now - 30 * day - n,
      stateAt: now - 29 * day,
      priority: undefined,
    }));
    await closer.registry.seed([...stale, ...protectedStale, ...fresh, ...closedLongAgo]);

    queries = [];
    const first = await closer.run();
    assert.equal(first.stoppedBy, "pass-complete");
    assert.equal(first.candidatesRead, 500);
    assert.equal(indexScanned(), 500, "the index query scanned only stale rows");
    assert.equal(first.closed, 300);
    assert.deepEqual(first.skippedBy, { "protected-priority": 200 });
    assert.equal(twilio.closed.size, 300);
    assert.ok(
      queries.every((query) => query.index === "byActivity"),
      "no base-table queries or scans",
    );

    for (const row of [stale[0], stale[299]]) {
      const recorded = await closer.registry.get(row?.conversationSid ?? "");
      assert.equal(recorded?.state, "closed");
      assert.equal(recorded?.closeOutcome, "closed-by-closer");
    }
    assert.equal((await closer.registry.get(fresh[0]?.conversationSid ?? ""))?.state, "active");

    // Closed rows left the sparse index: the next run reads only what is still stale and closable.
    queries = [];
    const second = await closer.run();
    assert.equal(second.candidatesRead, 200);
    assert.equal(indexScanned(), 200);
    assert.equal(second.closed, 0);
    assert.equal(await closer.cursors.load(), undefined);
  });

  test("a run that stops early saves its cursor in the table; the next run resumes there and finishes", async () => {
    const tableName = await freshTable();
    const twilio = memoryTwilio();
    const closer = closerFor(tableName, twilio.port);
    const now = Date.now();
    await closer.registry.seed(
      rowsOf(5, 1_200, (n) => ({
        tenantId: "acme",
        state: "active",
        lastActivityAt: now - 2 * day - n,
        stateAt: now - 3 * day,
        priority: undefined,
      })),
    );

    // The "Lambda" has time for a few hundred closes only: stop when the budget is used.
    let budget = 350;
    const first = await closer.run(() => (budget-- > 0 ? 600_000 : 0));
    assert.equal(first.stoppedBy, "time");
    assert.ok(first.closed > 0 && first.closed < 1_200, `closed ${first.closed}`);
    const stored = await closer.cursors.load();
    assert.ok(stored !== undefined, "the cursor was persisted");
    assert.equal(stored, first.cursor);
    assert.ok(decodeStaleCursor(stored) !== undefined);

    queries = [];
    const second = await closer.run();
    assert.equal(second.startedFrom, "stored-cursor");
    assert.equal(second.stoppedBy, "pass-complete");
    assert.equal(first.closed + second.closed, 1_200);
    assert.equal(twilio.closed.size, 1_200, "every conversation closed once, none twice");
    assert.ok(indexScanned() <= 1_200 - first.closed + settings.pageSize, "resume re-reads at most one page");
    assert.equal(await closer.cursors.load(), undefined, "a finished pass clears the cursor");
  });
});

describe("registry additions for the closer", () => {
  test("claimForClose succeeds only while nothing changed since selection and no other run holds it", async () => {
    const tableName = await freshTable();
    const registry = dynamoConversationRegistry(client, tableName);
    const now = Date.now();
    const conversationSid = sid(9, 1);
    await registry.touch({ conversationSid, tenantId: "acme", at: now - 2 * day });
    const claim = (seen: number, at = now) =>
      registry.claimForClose({ conversationSid, seenLastActivityAt: seen, now: at, leaseMs: 5 * minute });

    assert.deepEqual(await claim(now - 2 * day - 1), {
      kind: "changed",
      row: await registry.get(conversationSid),
    });
    assert.deepEqual(await claim(now - 2 * day), { kind: "claimed" });
    assert.equal((await claim(now - 2 * day, now + minute)).kind, "changed", "another run holds the lease");
    assert.equal((await claim(now - 2 * day, now + 6 * minute)).kind, "claimed", "an expired lease is free");

    await registry.touch({ conversationSid, tenantId: "acme", at: now });
    const moved = await claim(now - 2 * day, now + 20 * minute);
    assert.equal(moved.kind, "changed");
    assert.equal(moved.kind === "changed" ? moved.row?.lastActivityAt : undefined, now);

    await registry.setState({ conversationSid, tenantId: "acme", state: "closed", at: now + minute });
    assert.equal((await claim(now, now + 30 * minute)).kind, "changed", "a closed row is never claimed");
  });

  test("stalePage tokens walk every shard and return each stale row exactly once", async () => {
    const tableName = await freshTable();
    const registry = dynamoConversationRegistry(client, tableName);
    const now = Date.now();
    const rows = rowsOf(6, 437, (n) => ({
      tenantId: "acme",
      state: "inactive",
      lastActivityAt: now - day - n,
      stateAt: now - 2 * day,
      priority: undefined,
    }));
    await registry.seed(rows);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await registry.stalePage(now, token, 37);
      seen.push(...page.rows.map((row) => row.conversationSid));
      token = page.next;
      pages += 1;
    } while (token !== undefined);
    assert.equal(seen.length, 437);
    assert.equal(new Set(seen).size, 437);
    assert.ok(pages >= ActivityShards);
  });

  test("cursor tokens: round trip, and anything else is refused", () => {
    const cursor = { shard: 3, lastKey: { pk: { S: "CONV#CH1" }, lastActivityAt: { N: "17" } } };
    assert.deepEqual(decodeStaleCursor(encodeStaleCursor(cursor)), cursor);
    assert.deepEqual(decodeStaleCursor(encodeStaleCursor({ shard: 7 })), { shard: 7 });
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const token of [
      "",
      "not base64 json",
      forged({ s: ActivityShards }),
      forged({ s: -1 }),
      forged({ s: 1.5 }),
      forged({ s: 1, k: { pk: { SS: ["a"] } } }),
      forged({ s: 1, k: { pk: { S: 1 } } }),
      forged({ s: 1, k: [] }),
    ]) {
      assert.equal(decodeStaleCursor(token), undefined, token);
    }
  });
});
