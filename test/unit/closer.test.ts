// The closer use case against in-memory fakes of its ports, in virtual time: a registry that behaves
// like the sparse activity index, and a Twilio that takes time, enforces its own 30 mutations/s limit
// (20429), and can be told to fail the next N calls.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ClaimResult,
  type CloserDeps,
  type CloserRegistry,
  type CloserRequest,
  type CloserRunSettings,
  type ConversationCloser,
  type CursorStore,
  parseCloserRequest,
  runCloser,
} from "../../lib/app/closer.ts";
import { InvalidCloserRequestError } from "../../lib/app/errors.ts";
import { type Clock, tokenBucket } from "../../lib/app/rate-limiter.ts";
import {
  type CloserRule,
  closingNoticeAttributes,
  isClosableState,
  isClosingNotice,
  type LatestMessage,
} from "../../lib/domain/closer.ts";
import { TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import { virtualClock } from "../support/virtual-clock.ts";

const minute = 60_000;
const day = 24 * 60 * minute;
const T0 = Date.UTC(2026, 10, 24, 3, 0, 0);

/** mulberry32: deterministic jitter, so a failing run can be replayed. */
const seededRandom = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const busiestSecond = (times: readonly number[]): number => {
  let best = 0;
  let from = 0;
  for (let to = 0; to < times.length; to += 1) {
    while ((times[to] ?? 0) - (times[from] ?? 0) >= 1000) from += 1;
    best = Math.max(best, to - from + 1);
  }
  return best;
};

// ---- Fake registry: the sparse `byActivity` index, ordered by (lastActivityAt, sid) ----------------

type Row = {
  conversationSid: string;
  tenantId: string;
  state: string;
  lastActivityAt: number;
  stateAt: number;
  priority: string | undefined;
  closingUntil?: number;
  closeOutcome?: string;
};

const sidOf = (n: number) => `CH${n.toString(16).padStart(32, "0")}`;

const staleRow = (n: number, overrides: Partial<Row> = {}): Row => ({
  conversationSid: sidOf(n),
  tenantId: "default",
  state: "active",
  lastActivityAt: T0 - 2 * day - n,
  stateAt: T0 - 3 * day,
  priority: undefined,
  ...overrides,
});

const fakeRegistry = (rows: readonly Row[]) => {
  const table = new Map(rows.map((row) => [row.conversationSid, { ...row }]));
  const stats = { pages: 0, rowsRead: 0, claims: 0 };
  const hooks: { beforeClaim?: (sid: string) => void } = {};
  const before = (a: Row, key: { at: number; sid: string }) =>
    a.lastActivityAt < key.at || (a.lastActivityAt === key.at && a.conversationSid <= key.sid);
  const decode = (token: string): { at: number; sid: string } | undefined => {
    const match = /^fake:(\d+):(CH[0-9a-f]{32})$/.exec(token);
    return match?.[1] === undefined || match[2] === undefined
      ? undefined
      : { at: Number(match[1]), sid: match[2] };
  };
  const registry: CloserRegistry = {
    async stalePage(olderThan, cursor, limit) {
      stats.pages += 1;
      const after = cursor === undefined ? undefined : decode(cursor);
      if (cursor !== undefined && after === undefined) throw new RangeError("bad cursor");
      const eligible = [...table.values()]
        .filter((row) => isClosableState(row.state) && row.lastActivityAt < olderThan)
        .filter((row) => after === undefined || !before(row, after))
        .sort(
          (a, b) => a.lastActivityAt - b.lastActivityAt || a.conversationSid.localeCompare(b.conversationSid),
        );
      const page = eligible.slice(0, limit);
      stats.rowsRead += page.length;
      const last = page.at(-1);
      // Like DynamoDB: a full page always carries a LastEvaluatedKey, even when nothing follows.
      const next =
        page.length === limit && last ? `fake:${last.lastActivityAt}:${last.conversationSid}` : undefined;
      return { rows: page.map((row) => ({ ...row })), next };
    },
    isCursor: (token) => decode(token) !== undefined,
    async claimForClose(input): Promise<ClaimResult> {
      stats.claims += 1;
      hooks.beforeClaim?.(input.conversationSid);
      const row = table.get(input.conversationSid);
      if (
        row !== undefined &&
        row.lastActivityAt === input.seenLastActivityAt &&
        isClosableState(row.state) &&
        (row.closingUntil === undefined || row.closingUntil < input.now)
      ) {
        row.closingUntil = input.now + input.leaseMs;
        return { kind: "claimed" };
      }
      return { kind: "changed", row: row === undefined ? undefined : { ...row } };
    },
    async setState(input) {
      const row = table.get(input.conversationSid);
      if (row === undefined || row.stateAt > input.at) return false;
      row.state = input.state;
      row.stateAt = input.at;
      row.closeOutcome = input.outcome;
      return true;
    },
  };
  return { registry, table, stats, hooks };
};

// ---- Fake Twilio ------------------------------------------------------------------------------------

type Op = "latestMessage" | "postNotice" | "close";

const twilioError = (status: number, code: number) =>
  new TwilioApiError(`Twilio answered ${status} (${code})`, { status, code });

const fakeTwilio = (clock: Clock, options: { latencyMs: number; limitPerSecond: number }) => {
  const conversations = new Map<
    string,
    { state: "active" | "closed"; messages: { at: number; attributes: string; body: string }[] }
  >();
  const faults: { op: Op | undefined; remaining: number; error: () => TwilioApiError }[] = [];
  /** Start times of mutations Twilio accepted (and processed), in order. */
  const accepted: number[] = [];
  const closes = new Map<string, number>();
  const calls: Record<Op, number> = { latestMessage: 0, postNotice: 0, close: 0 };
  let windowStart = 0;

  const enter = async (op: Op, sid: string, mutation: boolean) => {
    calls[op] += 1;
    const fault = faults.find((f) => f.remaining > 0 && (f.op === undefined || f.op === op));
    if (fault !== undefined) fault.remaining -= 1;
    await clock.sleep(options.latencyMs / 2);
    if (fault !== undefined) throw fault.error();
    if (mutation) {
      const now = clock.now();
      while (windowStart < accepted.length && (accepted[windowStart] ?? 0) <= now - 1000) windowStart += 1;
      if (accepted.length - windowStart >= options.limitPerSecond) throw twilioError(429, 20429);
      accepted.push(now);
    }
    const conversation = conversations.get(sid);
    if (conversation === undefined) throw twilioError(404, 20404);
    return conversation;
  };
  const leave = () => clock.sleep(options.latencyMs / 2);

  const port: ConversationCloser = {
    async latestMessage(sid): Promise<LatestMessage | undefined> {
      const conversation = await enter("latestMessage", sid, false);
      await leave();
      const last = conversation.messages.at(-1);
      return last === undefined ? undefined : { at: last.at, attributes: last.attributes };
    },
    async postNotice(sid, notice) {
      const conversation = await enter("postNotice", sid, true);
      if (conversation.state === "closed") throw twilioError(400, 50377);
      conversation.messages.push({ at: clock.now(), attributes: notice.attributes, body: notice.body });
      await leave();
    },
    async close(sid) {
      const conversation = await enter("close", sid, true);
      if (conversation.state === "closed") throw twilioError(400, 50377);
      conversation.state = "closed";
      closes.set(sid, (closes.get(sid) ?? 0) + 1);
      await leave();
    },
  };
  return {
    port,
    conversations,
    accepted,
    closes,
    calls,
    /** The next `count` calls (of `op`, or any) fail with `error`, unprocessed. */
    failNext: (count: number, error: () => TwilioApiError, op?: Op) => {
      faults.push({ op, remaining: count, error });
    },
    notices: (sid: string) =>
      conversations.get(sid)?.messages.filter((m) => isClosingNotice(m.attributes)) ?? [],
  };
};

const fakeCursorStore = () => {
  const state: { cursor: string | undefined; saves: number; clears: number } = {
    cursor: undefined,
    saves: 0,
    clears: 0,
  };
  const store: CursorStore = {
    load: async () => state.cursor,
    save: async (cursor) => {
      state.cursor = cursor;
      state.saves += 1;
    },
    clear: async () => {
      state.cursor = undefined;
      state.clears += 1;
    },
  };
  return { store, state };
};

// ---- Harness ----------------------------------------------------------------------------------------

const rule = (overrides: Partial<CloserRule> = {}): CloserRule => ({
  enabled: true,
  idleMs: day,
  neverClosePriorities: [],
  states: ["active", "inactive"],
  ...overrides,
});

const baseSettings: CloserRunSettings = {
  policy: { defaults: rule(), tenants: {} },
  concurrency: 10,
  pageSize: 100,
  closingMessage: undefined,
  verifyWithTwilio: true,
  safetyMarginMs: 15_000,
  claimLeaseMs: 5 * minute,
  retry: { attempts: 6, baseDelayMs: 200, maxDelayMs: 5_000 },
};

const setup = (
  rows: readonly Row[],
  options: {
    settings?: Partial<CloserRunSettings>;
    rate?: number;
    latencyMs?: number;
    twilioLimitPerSecond?: number;
  } = {},
) => {
  const clock = virtualClock(T0);
  const fakes = fakeRegistry(rows);
  const twilio = fakeTwilio(clock, {
    latencyMs: options.latencyMs ?? 120,
    limitPerSecond: options.twilioLimitPerSecond ?? 30,
  });
  for (const row of rows) {
    twilio.conversations.set(row.conversationSid, {
      state: "active",
      messages: [{ at: row.lastActivityAt, attributes: "{}", body: "hello" }],
    });
  }
  const cursors = fakeCursorStore();
  const settings = { ...baseSettings, ...options.settings };
  const deps = (): CloserDeps => ({
    registry: fakes.registry,
    twilio: twilio.port,
    cursors: cursors.store,
    limiter: tokenBucket({ ratePerSecond: options.rate ?? 25, clock, adaptive: { floorPerSecond: 1 } }),
    clock,
    random: seededRandom(7),
    settings,
  });
  const run = (request: Partial<CloserRequest> = {}, lambdaMs = 900_000) => {
    const deadline = clock.now() + lambdaMs;
    return runCloser(
      deps(),
      { dryRun: false, cursor: undefined, maxCloses: undefined, ...request },
      { remainingMs: () => deadline - clock.now() },
    );
  };
  return { clock, ...fakes, twilio, cursors, run };
};

const range = (count: number, from = 0) => Array.from({ length: count }, (_, i) => from + i);

// ---- Tests ------------------------------------------------------------------------------------------

describe("closing at scale within the rate limit", () => {
  test("closes 10,000 stale conversations in one run at the configured 25 mutations/s, notice included", async () => {
    const rows = range(10_000).map((n) => staleRow(n));
    const h = setup(rows, {
      settings: { closingMessage: "This conversation was closed after a day without replies." },
    });
    const started = h.clock.now();
    const summary = await h.run({}, 900_000);

    assert.equal(summary.closed, 10_000);
    assert.equal(summary.failed, 0);
    assert.equal(summary.skipped, 0);
    assert.equal(summary.stoppedBy, "pass-complete");
    assert.equal(summary.mutations, 20_000, "one notice + one close each, no retries needed");
    assert.equal(summary.throttled, 0, "at 25/s Twilio's 30/s limit is never hit");
    assert.ok([...h.twilio.closes.values()].every((count) => count === 1));
    assert.equal(h.twilio.closes.size, 10_000);
    assert.ok(rows.every((row) => h.twilio.notices(row.conversationSid).length === 1));
    assert.ok(
      [...h.table.values()].every((row) => row.state === "closed" && row.closeOutcome === "closed-by-closer"),
    );

    assert.ok(busiestSecond(h.twilio.accepted) <= 25, `busiest second: ${busiestSecond(h.twilio.accepted)}`);
    const elapsedSeconds = (h.clock.now() - started) / 1000;
    const mutationsPerSecond = summary.mutations / elapsedSeconds;
    assert.ok(
      mutationsPerSecond > 24 && mutationsPerSecond <= 25,
      `${mutationsPerSecond.toFixed(2)} mutations/s`,
    );
    assert.equal(h.cursors.state.cursor, undefined, "a completed pass clears the cursor");
  });

  test("with a higher rate (Twilio limit raised), 10,000 closes fit a 300 s Lambda", async () => {
    const rows = range(10_000).map((n) => staleRow(n));
    const h = setup(rows, { rate: 50, twilioLimitPerSecond: 60, settings: { concurrency: 20 } });
    const summary = await h.run({}, 300_000);
    assert.equal(summary.closed, 10_000);
    assert.equal(summary.stoppedBy, "pass-complete");
    assert.ok(summary.durationMs <= 300_000 - 15_000, `took ${summary.durationMs} ms`);
    assert.ok(busiestSecond(h.twilio.accepted) <= 50);
  });

  test("configured above Twilio's real limit, the limiter adapts: few 20429s, and nothing fails", async () => {
    const rows = range(600).map((n) => staleRow(n));
    const h = setup(rows, { rate: 60, twilioLimitPerSecond: 30, settings: { concurrency: 20 } });
    const summary = await h.run();
    assert.ok(summary.throttled > 0, "the fake Twilio did enforce its limit");
    // A fixed 60/s would be refused about every other call (≈ 570 20429s here); backing off on each
    // burst keeps it near Twilio's real rate.
    assert.ok(summary.throttled < 120, `${summary.throttled} throttled`);
    assert.equal(summary.closed, 600);
    assert.equal(summary.failed, 0);
    assert.ok(busiestSecond(h.twilio.accepted) <= 30);
  });
});

describe("20429 and 5xx bursts", () => {
  test("a burst of 20429 is retried with backoff; every conversation still closes exactly once", async () => {
    const rows = range(300).map((n) => staleRow(n));
    const h = setup(rows);
    h.twilio.failNext(40, () => twilioError(429, 20429), "close");
    const summary = await h.run();
    assert.equal(summary.throttled, 40);
    assert.equal(summary.closed, 300);
    assert.equal(summary.failed, 0);
    assert.equal(summary.mutations, 340, "each retry takes its own token");
    assert.ok([...h.twilio.closes.values()].every((count) => count === 1));
  });

  test("5xx answers are retried too, and count as mutations against the rate", async () => {
    const rows = range(50).map((n) => staleRow(n));
    const h = setup(rows);
    h.twilio.failNext(12, () => twilioError(503, 20503), "close");
    const summary = await h.run();
    assert.equal(summary.closed, 50);
    assert.equal(summary.throttled, 0);
    assert.equal(summary.mutations, 62);
  });

  test("throttling that outlasts the retries fails those rows; they stay stale and the next run closes them", async () => {
    const rows = range(20).map((n) => staleRow(n));
    const h = setup(rows, {
      settings: { concurrency: 1, retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 } },
    });
    h.twilio.failNext(6, () => twilioError(429, 20429), "close");
    const first = await h.run();
    assert.equal(first.failed, 2);
    assert.deepEqual(first.failedBy, { "20429": 2 });
    assert.equal(first.closed, 18);
    assert.equal([...h.table.values()].filter((row) => row.state === "active").length, 2);

    await h.clock.sleep(15 * minute); // the failed rows' claim lease runs out before the next scheduled run
    const second = await h.run();
    assert.equal(second.closed, 2);
    assert.equal(second.failed, 0);
    assert.ok([...h.table.values()].every((row) => row.state === "closed"));
  });

  test("rejected credentials abort the run instead of failing every row", async () => {
    const rows = range(200).map((n) => staleRow(n));
    const h = setup(rows, { settings: { concurrency: 4 } });
    h.twilio.failNext(1_000, () => twilioError(401, 20003));
    const summary = await h.run();
    assert.equal(summary.stoppedBy, "aborted");
    assert.match(summary.abortReason ?? "", /credentials/);
    assert.ok(summary.failed <= 4, `only the rows in flight fail, got ${summary.failed}`);
    assert.equal(summary.closed, 0);
    assert.ok(
      h.cursors.state.cursor === undefined,
      "nothing finished on the first page: the next run starts over",
    );
  });
});

describe("re-checking activity just before closing", () => {
  test("a conversation whose registry row moved after selection is left alone", async () => {
    const rows = range(5).map((n) => staleRow(n));
    const h = setup(rows);
    const woke = sidOf(2);
    h.hooks.beforeClaim = (sid) => {
      const row = h.table.get(sid);
      if (sid === woke && row !== undefined) row.lastActivityAt = h.clock.now();
    };
    const summary = await h.run();
    assert.equal(summary.closed, 4);
    assert.deepEqual(summary.skippedBy, { "active-again": 1 });
    assert.equal(h.twilio.conversations.get(woke)?.state, "active");
    assert.equal(h.twilio.calls.close, 4);
    assert.equal(h.table.get(woke)?.state, "active");
  });

  test("a customer message in Twilio that the registry has not seen yet keeps it open, with no notice", async () => {
    const rows = range(5).map((n) => staleRow(n));
    const h = setup(rows, { settings: { closingMessage: "Closing now." } });
    const woke = sidOf(3);
    h.twilio.conversations
      .get(woke)
      ?.messages.push({ at: T0 - 30_000, attributes: "{}", body: "still there?" });
    const summary = await h.run();
    assert.equal(summary.closed, 4);
    assert.deepEqual(summary.skippedBy, { "active-in-twilio": 1 });
    assert.equal(h.twilio.conversations.get(woke)?.state, "active");
    assert.equal(h.twilio.notices(woke).length, 0);
  });

  test("with the Twilio re-check switched off, the registry alone decides", async () => {
    const rows = range(3).map((n) => staleRow(n));
    const h = setup(rows, { settings: { verifyWithTwilio: false } });
    h.twilio.conversations.get(sidOf(1))?.messages.push({ at: T0 - 1000, attributes: "{}", body: "hi" });
    const summary = await h.run();
    assert.equal(summary.closed, 3);
    assert.equal(h.twilio.calls.latestMessage, 0);
  });

  test("a row closed meanwhile (e.g. by Twilio's timer, via the state webhook) is skipped, not closed again", async () => {
    const rows = range(3).map((n) => staleRow(n));
    const h = setup(rows);
    h.hooks.beforeClaim = (sid) => {
      const row = h.table.get(sid);
      if (sid === sidOf(0) && row !== undefined) row.state = "closed";
    };
    const summary = await h.run();
    assert.deepEqual(summary.skippedBy, { "no-longer-closable": 1 });
    assert.equal(h.twilio.calls.close, 2);
  });

  test("already closed (50377) or deleted (20404) in Twilio counts as done and is recorded", async () => {
    const rows = range(3).map((n) => staleRow(n));
    const h = setup(rows);
    const closedSid = sidOf(0);
    const deletedSid = sidOf(1);
    const closed = h.twilio.conversations.get(closedSid);
    if (closed !== undefined) closed.state = "closed";
    h.twilio.conversations.delete(deletedSid);
    const summary = await h.run();
    assert.equal(summary.closed, 3);
    assert.equal(summary.alreadyClosed, 2);
    assert.equal(summary.failed, 0);
    assert.equal(h.table.get(closedSid)?.closeOutcome, "already-closed");
    assert.equal(h.table.get(deletedSid)?.state, "deleted");
    assert.equal(h.table.get(sidOf(2))?.closeOutcome, "closed-by-closer");
  });
});

describe("closing notice", () => {
  test("is posted before the close, exactly once even when the close failed the first time", async () => {
    const rows = [staleRow(0)];
    const h = setup(rows, {
      settings: { closingMessage: "Bye", retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
    });
    h.twilio.failNext(1, () => twilioError(500, 20500), "close");
    const first = await h.run();
    assert.equal(first.failed, 1);
    assert.equal(h.twilio.notices(sidOf(0)).length, 1);

    await h.clock.sleep(15 * minute);
    const second = await h.run();
    assert.equal(second.closed, 1);
    assert.equal(h.twilio.notices(sidOf(0)).length, 1, "the notice already in Twilio is recognised");
    assert.equal(h.twilio.conversations.get(sidOf(0))?.state, "closed");
    const messages = h.twilio.conversations.get(sidOf(0))?.messages ?? [];
    assert.equal(messages.at(-1)?.attributes, closingNoticeAttributes());
  });

  test("overlapping runs close each conversation once and post one notice each", async () => {
    const rows = range(200).map((n) => staleRow(n));
    const h = setup(rows, { settings: { closingMessage: "Bye" } });
    const [a, b] = await Promise.all([h.run(), h.run()]);
    assert.equal(a.closed + b.closed, 200);
    assert.ok(rows.every((row) => h.twilio.notices(row.conversationSid).length === 1));
    assert.ok([...h.twilio.closes.values()].every((count) => count === 1));
    assert.ok((a.skippedBy["claimed-elsewhere"] ?? 0) + (b.skippedBy["claimed-elsewhere"] ?? 0) > 0);
  });
});

describe("stopping early and resuming", () => {
  test("stops before the Lambda's time runs out, saves the cursor, and the next run finishes the pass", async () => {
    const rows = range(2_000).map((n) => staleRow(n));
    const h = setup(rows);
    const first = await h.run({}, 60_000);
    assert.equal(first.stoppedBy, "time");
    assert.ok(first.durationMs < 60_000 - 15_000 / 2, `the run ended ${first.durationMs} ms in`);
    assert.ok(first.closed > 1_000 && first.closed < 2_000, `closed ${first.closed}`);
    assert.equal(first.failed, 0);
    assert.ok(h.cursors.state.cursor !== undefined);
    assert.equal(first.cursor, h.cursors.state.cursor);

    const readsBefore = h.stats.rowsRead;
    const second = await h.run({}, 900_000);
    assert.equal(second.startedFrom, "stored-cursor");
    assert.equal(second.stoppedBy, "pass-complete");
    assert.equal(first.closed + second.closed, 2_000);
    assert.ok([...h.twilio.closes.values()].every((count) => count === 1));
    assert.equal(h.twilio.closes.size, 2_000);
    // Resuming reads at most the one unfinished page again, not the part already done.
    assert.ok(h.stats.rowsRead - readsBefore <= 2_000 - first.closed + 100);
    assert.equal(h.cursors.state.cursor, undefined);
  });

  test("maxCloses stops after exactly that many closes and the next run continues", async () => {
    const rows = range(250).map((n) => staleRow(n));
    const h = setup(rows);
    const first = await h.run({ maxCloses: 120 });
    assert.equal(first.stoppedBy, "max-closes");
    assert.equal(first.closed, 120);
    const second = await h.run();
    assert.equal(second.closed, 130);
    assert.equal(h.twilio.closes.size, 250);
  });

  test("a stored cursor this registry cannot read is dropped and the pass starts over", async () => {
    const rows = range(10).map((n) => staleRow(n));
    const h = setup(rows);
    h.cursors.state.cursor = "left over from an older shard layout";
    const summary = await h.run();
    assert.equal(summary.cursorReset, true);
    assert.equal(summary.startedFrom, "pass-start");
    assert.equal(summary.closed, 10);
  });

  test("a request cursor that this registry did not issue is refused before anything runs", async () => {
    const h = setup([staleRow(0)]);
    await assert.rejects(h.run({ cursor: "garbage" }), InvalidCloserRequestError);
    assert.equal(h.twilio.calls.close, 0);
  });
});

describe("selection and rules", () => {
  test("only stale rows are read; fresh, closed and protected rows are never closed", async () => {
    const rows = [
      ...range(30).map((n) => staleRow(n)),
      ...range(500, 100).map((n) => staleRow(n, { lastActivityAt: T0 - 5 * minute })),
      ...range(20, 1_000).map((n) => staleRow(n, { state: "closed" })),
      ...range(5, 2_000).map((n) => staleRow(n, { priority: "high", tenantId: "vip" })),
      ...range(5, 3_000).map((n) => staleRow(n, { tenantId: "off" })),
    ];
    const h = setup(rows, {
      settings: {
        policy: {
          defaults: rule(),
          tenants: { vip: rule({ neverClosePriorities: ["high"] }), off: rule({ enabled: false }) },
        },
      },
    });
    const summary = await h.run();
    assert.equal(summary.candidatesRead, 40);
    assert.equal(h.stats.rowsRead, 40);
    assert.equal(summary.closed, 30);
    assert.deepEqual(summary.skippedBy, { "protected-priority": 5, "tenant-disabled": 5 });
    assert.equal(h.twilio.calls.close, 30);
  });

  test("nothing is read when every rule is disabled", async () => {
    const h = setup([staleRow(0)], {
      settings: { policy: { defaults: rule({ enabled: false }), tenants: {} } },
    });
    const summary = await h.run();
    assert.equal(summary.stoppedBy, "disabled");
    assert.equal(h.stats.pages, 0);
  });
});

describe("dry run", () => {
  test("lists exactly what would be closed and changes nothing anywhere", async () => {
    const rows = [
      ...range(25).map((n) => staleRow(n)),
      ...range(5, 100).map((n) => staleRow(n, { lastActivityAt: T0 - minute })),
      staleRow(200, { priority: "high", tenantId: "vip" }),
    ];
    const h = setup(rows, {
      settings: {
        closingMessage: "Bye",
        policy: { defaults: rule(), tenants: { vip: rule({ neverClosePriorities: ["high"] }) } },
      },
    });
    h.cursors.state.cursor = "fake:1:CH00000000000000000000000000000001";
    const before = JSON.stringify([...h.table.values()]);
    const summary = await h.run({ dryRun: true });

    assert.equal(summary.dryRun, true);
    assert.equal(summary.startedFrom, "pass-start", "a dry run ignores the stored cursor");
    assert.deepEqual(new Set(summary.wouldClose), new Set(range(25).map(sidOf)));
    assert.equal(summary.closed, 0);
    assert.deepEqual(summary.skippedBy, { "protected-priority": 1 });
    assert.deepEqual(h.twilio.calls, { latestMessage: 0, postNotice: 0, close: 0 });
    assert.equal(h.stats.claims, 0);
    assert.equal(JSON.stringify([...h.table.values()]), before);
    assert.equal(h.cursors.state.cursor, "fake:1:CH00000000000000000000000000000001");
    assert.equal(h.cursors.state.saves + h.cursors.state.clears, 0);
  });

  test("pages with maxCloses: the returned cursor lists the rest", async () => {
    const rows = range(250).map((n) => staleRow(n));
    const h = setup(rows);
    const first = await h.run({ dryRun: true, maxCloses: 150 });
    assert.equal(first.wouldClose.length, 150);
    assert.equal(first.stoppedBy, "max-closes");
    const second = await h.run({ dryRun: true, cursor: first.cursor });
    assert.equal(second.stoppedBy, "pass-complete");
    const listed = new Set([...first.wouldClose, ...second.wouldClose]);
    assert.equal(listed.size, 250);
    assert.equal(h.twilio.calls.close, 0);
  });
});

describe("parseCloserRequest", () => {
  test("a scheduled run's empty payload or an EventBridge envelope is a plain run", () => {
    for (const event of [undefined, null, {}, { source: "aws.scheduler", detail: {} }]) {
      assert.deepEqual(parseCloserRequest(event), { dryRun: false, cursor: undefined, maxCloses: undefined });
    }
  });

  test("on-demand fields, including the string forms a query string produces", () => {
    assert.deepEqual(parseCloserRequest({ dryRun: true, cursor: "abc", maxCloses: 5 }), {
      dryRun: true,
      cursor: "abc",
      maxCloses: 5,
    });
    assert.deepEqual(parseCloserRequest({ dryRun: "true", maxCloses: "7" }), {
      dryRun: true,
      cursor: undefined,
      maxCloses: 7,
    });
  });

  test("rejects payloads that would run something other than what was asked", () => {
    for (const event of [
      "run",
      [],
      { dryRun: "yes" },
      { dryRun: 1 },
      { maxCloses: 0 },
      { maxCloses: 2.5 },
      { maxCloses: "-1" },
      { cursor: 42 },
      { cursor: "x".repeat(5000) },
    ]) {
      assert.throws(() => parseCloserRequest(event), InvalidCloserRequestError, JSON.stringify(event));
    }
  });
});
