// The mirror's DynamoDB items on DynamoDB Local: the conditional writes that settle races (mapping
// compare-and-set, ledger states, claims, monotonic statuses) and the documented key layout.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import {
  dynamoMirrorLedger,
  dynamoThreadMappings,
  LedgerTtlSeconds,
} from "../../lib/adapters/conversation-mapping.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import type { MirrorLedger, ThreadMapping, ThreadMappings } from "../../lib/app/mirror/ports.ts";
import { type CustomerKey, customerKey } from "../../lib/domain/mirror.ts";
import { type LocalAws, localAws } from "../support/local-aws.ts";

let aws: LocalAws;
let table: string;
let threads: ThreadMappings;
let ledger: MirrorLedger;
let run = 0;

before(async () => {
  aws = await localAws();
  table = aws.resources.tableNames.conversations;
  threads = dynamoThreadMappings(aws.clients.dynamodb, table, () => 1_000);
  ledger = dynamoMirrorLedger(aws.clients.dynamodb, table);
});

const fresh = (): { key: CustomerKey; sm: string } => {
  run += 1;
  return {
    key: customerKey("acme", `+1415555${String(run).padStart(4, "0")}`),
    sm: `SM${String(run).padStart(32, "0")}`,
  };
};

const mapping = (conversationSid: string, over: Partial<ThreadMapping> = {}): ThreadMapping => ({
  conversationSid,
  uniqueName: "t_acme_sms_1",
  generation: 1,
  origin: "created",
  bound: false,
  boundAt: 0,
  proxyAddress: undefined,
  ...over,
});

const rawItem = async (pk: string, sk: string) =>
  (
    await aws.clients.dynamodb.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }),
    )
  ).Item;

describe("thread mappings", () => {
  test("stored under MAP#<tenant>#<channel>#<address> / THREAD and read back", async () => {
    const { key } = fresh();
    assert.equal(await threads.get(key), undefined);
    const stored = await threads.put(key, mapping("CH1", { proxyAddress: "+15005550006" }), undefined);
    assert.equal(stored.conversationSid, "CH1");
    assert.deepEqual(await threads.get(key), mapping("CH1", { proxyAddress: "+15005550006" }));
    const item = await rawItem(`MAP#acme#sms#${key.address}`, "THREAD");
    assert.equal(item?.conversationSid?.S, "CH1");
    assert.equal(item?.expiresAt, undefined, "mappings do not expire");
  });

  test("of concurrent first writers exactly one wins and all see the winner", async () => {
    const { key } = fresh();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => threads.put(key, mapping(`CH${i}`), undefined)),
    );
    const winners = new Set(results.map((result) => result.conversationSid));
    assert.equal(winners.size, 1);
    assert.equal((await threads.get(key))?.conversationSid, [...winners][0]);
  });

  test("replacement is a compare-and-set on the old thread", async () => {
    const { key } = fresh();
    await threads.put(key, mapping("CH-old"), undefined);
    const replaced = await threads.put(key, mapping("CH-new", { generation: 2 }), "CH-old");
    assert.equal(replaced.conversationSid, "CH-new");
    // A worker that still believes the old thread is current loses and gets the new one.
    const late = await threads.put(key, mapping("CH-other", { generation: 2 }), "CH-old");
    assert.equal(late.conversationSid, "CH-new");
    assert.equal((await threads.get(key))?.generation, 2);
  });

  test("markBound only updates the thread it bound in", async () => {
    const { key } = fresh();
    await threads.put(key, mapping("CH-a"), undefined);
    await threads.markBound(key, "CH-stale", { proxyAddress: "+15005550006", at: 5 });
    assert.equal((await threads.get(key))?.bound, false);
    await threads.markBound(key, "CH-a", { proxyAddress: "+15005550006", at: 5 });
    const bound = await threads.get(key);
    assert.deepEqual([bound?.bound, bound?.boundAt, bound?.proxyAddress], [true, 5, "+15005550006"]);
  });
});

describe("mirror ledger", () => {
  test("pending → posted; a posted message cannot be re-opened or claimed as native", async () => {
    const { sm } = fresh();
    assert.equal(await ledger.begin(sm, { conversationSid: "CH1", tenantId: "acme", at: 1_000 }), true);
    assert.equal((await ledger.get(sm))?.state, "pending");
    assert.equal(await ledger.begin(sm, { conversationSid: "CH2", tenantId: "acme", at: 1_001 }), true);
    await ledger.complete(sm, { conversationSid: "CH2", messageSid: "IM1", at: 1_002 });
    const entry = await ledger.get(sm);
    assert.deepEqual([entry?.state, entry?.conversationSid, entry?.messageSid], ["posted", "CH2", "IM1"]);
    assert.equal(await ledger.begin(sm, { conversationSid: "CH3", tenantId: "acme", at: 1_003 }), false);
    assert.equal(
      await ledger.settle(sm, {
        state: "native",
        conversationSid: "CH9",
        messageSid: "IM9",
        at: 1_004,
      }),
      false,
    );
    assert.equal((await ledger.get(sm))?.messageSid, "IM1");
  });

  test("items live under MIRRORED#<sid> / MESSAGE and expire 90 days after the last write", async () => {
    const { sm } = fresh();
    await ledger.begin(sm, { conversationSid: "CH1", tenantId: "acme", at: 1_000_000 });
    const item = await rawItem(`MIRRORED#${sm}`, "MESSAGE");
    assert.equal(item?.expiresAt?.N, String(1_000 + LedgerTtlSeconds));
    assert.equal(item?.tenantId?.S, "acme");
  });

  test("a native (Conversations) delivery settles once; begin then refuses it", async () => {
    const { sm } = fresh();
    const native = { state: "native" as const, conversationSid: "CH1", messageSid: "IM1", at: 1 };
    assert.equal(await ledger.settle(sm, native), true);
    assert.equal(await ledger.settle(sm, { ...native, state: "captured" }), false);
    assert.equal((await ledger.get(sm))?.state, "native");
    assert.equal(await ledger.begin(sm, { conversationSid: "CH1", tenantId: "acme", at: 2 }), false);
  });

  test("a summarized outbound message keeps its template, takes statuses monotonically and is never posted", async () => {
    const { sm } = fresh();
    await ledger.recordSend(sm, { tenantId: "acme", template: "HX1", at: 1 });
    const summarized = { state: "summarized" as const, conversationSid: "CH1", messageSid: undefined, at: 2 };
    assert.equal(await ledger.settle(sm, summarized), true);
    assert.equal(await ledger.settle(sm, { ...summarized, state: "native" }), false);
    assert.equal(await ledger.begin(sm, { conversationSid: "CH1", tenantId: "acme", at: 3 }), false);
    await ledger.advanceStatus(sm, { status: "delivered", errorCode: undefined, at: 4 });
    const entry = await ledger.advanceStatus(sm, { status: "sent", errorCode: undefined, at: 5 });
    assert.deepEqual(
      [entry?.state, entry?.conversationSid, entry?.messageSid, entry?.template, entry?.status],
      ["summarized", "CH1", undefined, "HX1", "delivered"],
    );
    assert.equal((await rawItem(`MIRRORED#${sm}`, "MESSAGE"))?.mirrorState?.S, "summarized");
  });

  test("a post sendOutbound made is keyed by its IM SID and carries its sendId", async () => {
    const im = `IM${fresh().sm.slice(2)}`;
    await ledger.recordSend(im, { tenantId: "acme", template: "HX2", sendId: "send-1", at: 1 });
    await ledger.complete(im, { conversationSid: "CH1", messageSid: im, at: 1 });
    const delivered = await ledger.advanceStatus(im, { status: "delivered", errorCode: undefined, at: 2 });
    assert.deepEqual(
      [delivered?.state, delivered?.messageSid, delivered?.sendId, delivered?.template, delivered?.status],
      ["posted", im, "send-1", "HX2", "delivered"],
    );
    assert.equal((await rawItem(`MIRRORED#${im}`, "MESSAGE"))?.sendId?.S, "send-1");
  });

  test("a thread message is claimed by one Messaging SID only, even concurrently", async () => {
    const { sm: message } = fresh();
    const claimants = Array.from({ length: 8 }, () => fresh().sm);
    const results = await Promise.all(claimants.map((sm) => ledger.claimMessage(message, sm, 1_000)));
    assert.equal(results.filter(Boolean).length, 1);
    const winner = claimants[results.indexOf(true)] ?? "";
    assert.equal(await ledger.claimMessage(message, winner, 2_000), true, "a retry keeps its own claim");
    const item = await rawItem(`CLAIM#${message}`, "CLAIM");
    assert.equal(item?.messagingMessageSid?.S, winner);
  });

  test("statuses only move up in rank, whatever order they arrive in", async () => {
    const { sm } = fresh();
    await ledger.complete(sm, {
      conversationSid: "CH1",
      messageSid: "IM1",
      at: 1,
      status: { status: "sent", errorCode: undefined },
    });
    assert.equal(
      (await ledger.advanceStatus(sm, { status: "read", errorCode: undefined, at: 2 }))?.status,
      "read",
    );
    const late = await ledger.advanceStatus(sm, { status: "delivered", errorCode: undefined, at: 3 });
    assert.deepEqual([late?.status, late?.appliedStatus], ["read", "sent"]);
    await ledger.markApplied(sm, "read", 4);
    await ledger.markApplied(sm, "delivered", 5);
    assert.equal((await ledger.get(sm))?.appliedStatus, "read");
  });

  test("a failure records its error code; a higher status without one clears it", async () => {
    const { sm } = fresh();
    await ledger.complete(sm, {
      conversationSid: "CH1",
      messageSid: "IM1",
      at: 1,
      status: { status: "queued", errorCode: undefined },
    });
    const failed = await ledger.advanceStatus(sm, { status: "undelivered", errorCode: "30003", at: 2 });
    assert.deepEqual([failed?.status, failed?.errorCode], ["undelivered", "30003"]);
    assert.equal(
      (await ledger.advanceStatus(sm, { status: "sent", errorCode: undefined, at: 3 }))?.errorCode,
      "30003",
    );
    const delivered = await ledger.advanceStatus(sm, { status: "delivered", errorCode: undefined, at: 4 });
    assert.deepEqual([delivered?.status, delivered?.errorCode], ["delivered", undefined]);
  });

  test("no status is recorded for a message that was never mirrored", async () => {
    const { sm } = fresh();
    assert.equal(await ledger.advanceStatus(sm, { status: "sent", errorCode: undefined, at: 1 }), undefined);
  });

  test("the template recorded at send time survives posting", async () => {
    const { sm } = fresh();
    await ledger.recordSend(sm, { tenantId: "acme", template: "HX1", at: 1 });
    assert.deepEqual([(await ledger.get(sm))?.state, (await ledger.get(sm))?.template], [undefined, "HX1"]);
    await ledger.begin(sm, { conversationSid: "CH1", tenantId: "acme", at: 2 });
    await ledger.complete(sm, { conversationSid: "CH1", messageSid: "IM1", at: 3 });
    assert.equal((await ledger.get(sm))?.template, "HX1");
  });
});

describe("sharing the table with the registry", () => {
  test("mapping and ledger items never show up as stale conversations", async () => {
    const { key, sm } = fresh();
    const registry = dynamoConversationRegistry(aws.clients.dynamodb, table);
    await registry.touch({ conversationSid: "CH-registry", tenantId: "acme", at: 10 });
    await threads.put(key, mapping("CH-registry"), undefined);
    await ledger.begin(sm, { conversationSid: "CH-registry", tenantId: "acme", at: 10 });
    const seen: string[] = [];
    let cursor: Parameters<typeof registry.stale>[1] = { shard: 0 };
    while (cursor !== undefined) {
      const page = await registry.stale(Number.MAX_SAFE_INTEGER, cursor);
      seen.push(...page.rows.map((row) => row.conversationSid));
      cursor = page.next;
    }
    assert.deepEqual(seen, ["CH-registry"]);
  });
});
