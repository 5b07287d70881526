// Candidate qualification at the threshold boundaries, tenant rules, the index query bound, and the
// just-before-close Twilio re-check, all at an injected `now`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseCloserPolicy, parseCloserSettings } from "../../lib/config/closer-config.ts";
import { ConfigError } from "../../lib/config/errors.ts";
import {
  type Candidate,
  type CloserPolicy,
  type CloserRule,
  checkTwilioActivity,
  closingNoticeAttributes,
  isClosingNotice,
  qualify,
  selectionThreshold,
} from "../../lib/domain/closer.ts";

const minute = 60_000;
const now = Date.UTC(2026, 10, 24, 12, 0, 0);

const rule = (overrides: Partial<CloserRule> = {}): CloserRule => ({
  enabled: true,
  idleMs: 60 * minute,
  neverClosePriorities: [],
  states: ["active", "inactive"],
  ...overrides,
});

const policy = (overrides: Partial<CloserPolicy> = {}): CloserPolicy => ({
  defaults: rule(),
  tenants: {},
  ...overrides,
});

const candidate = (overrides: Partial<Candidate> = {}): Candidate => ({
  conversationSid: "CH00000000000000000000000000000001",
  tenantId: "default",
  state: "active",
  lastActivityAt: now - 2 * 60 * minute,
  priority: undefined,
  ...overrides,
});

describe("qualify: the idle threshold", () => {
  test("quiet for exactly the threshold is not yet stale", () => {
    assert.deepEqual(qualify(policy(), candidate({ lastActivityAt: now - 60 * minute }), now), {
      close: false,
      reason: "not-idle",
    });
  });

  test("one millisecond past the threshold is stale", () => {
    assert.deepEqual(qualify(policy(), candidate({ lastActivityAt: now - 60 * minute - 1 }), now), {
      close: true,
    });
  });

  test("one millisecond short of the threshold is not stale", () => {
    assert.equal(qualify(policy(), candidate({ lastActivityAt: now - 60 * minute + 1 }), now).close, false);
  });

  test("activity stamped in the future (clock skew) is never stale", () => {
    assert.equal(qualify(policy(), candidate({ lastActivityAt: now + 5 * minute }), now).close, false);
  });

  test("the same row becomes stale as the injected clock moves past the threshold", () => {
    const row = candidate({ lastActivityAt: now });
    assert.equal(qualify(policy(), row, now + 60 * minute).close, false);
    assert.equal(qualify(policy(), row, now + 60 * minute + 1).close, true);
  });
});

describe("qualify: tenant rules", () => {
  const tenants = {
    acme: rule({ idleMs: 10 * minute }),
    slow: rule({ idleMs: 7 * 24 * 60 * minute }),
    off: rule({ enabled: false }),
    vip: rule({ neverClosePriorities: ["high", "urgent"] }),
    quietOnly: rule({ states: ["inactive"] }),
  };

  test("a tenant's shorter threshold applies to its own rows only", () => {
    const lastActivityAt = now - 30 * minute;
    assert.equal(
      qualify(policy({ tenants }), candidate({ tenantId: "acme", lastActivityAt }), now).close,
      true,
    );
    assert.equal(
      qualify(policy({ tenants }), candidate({ tenantId: "default", lastActivityAt }), now).close,
      false,
    );
  });

  test("a tenant's longer threshold keeps rows that are stale by the defaults", () => {
    const verdict = qualify(policy({ tenants }), candidate({ tenantId: "slow" }), now);
    assert.deepEqual(verdict, { close: false, reason: "not-idle" });
  });

  test("a disabled tenant is never closed, however old", () => {
    const verdict = qualify(policy({ tenants }), candidate({ tenantId: "off", lastActivityAt: 0 }), now);
    assert.deepEqual(verdict, { close: false, reason: "tenant-disabled" });
  });

  test("a protected priority is never closed; matching ignores case and padding", () => {
    for (const priority of ["high", " HIGH ", "Urgent"]) {
      const verdict = qualify(policy({ tenants }), candidate({ tenantId: "vip", priority }), now);
      assert.deepEqual(verdict, { close: false, reason: "protected-priority" }, priority);
    }
    assert.equal(
      qualify(policy({ tenants }), candidate({ tenantId: "vip", priority: "low" }), now).close,
      true,
    );
  });

  test("protected priorities are per tenant", () => {
    assert.equal(qualify(policy({ tenants }), candidate({ priority: "high" }), now).close, true);
  });

  test("only the configured states qualify", () => {
    const active = qualify(policy({ tenants }), candidate({ tenantId: "quietOnly", state: "active" }), now);
    const inactive = qualify(
      policy({ tenants }),
      candidate({ tenantId: "quietOnly", state: "inactive" }),
      now,
    );
    assert.deepEqual(active, { close: false, reason: "state-excluded" });
    assert.equal(inactive.close, true);
  });

  test("closed, deleted and initializing rows never qualify", () => {
    for (const state of ["closed", "deleted", "initializing"]) {
      assert.deepEqual(qualify(policy(), candidate({ state }), now), {
        close: false,
        reason: "state-excluded",
      });
    }
  });
});

describe("selectionThreshold", () => {
  test("reads down to the shortest enabled threshold, so every tenant's stale rows are selected", () => {
    const tenants = { acme: rule({ idleMs: 10 * minute }), off: rule({ enabled: false, idleMs: minute }) };
    assert.equal(selectionThreshold(policy({ tenants }), now), now - 10 * minute);
  });

  test("the default threshold when no tenant overrides it", () => {
    assert.equal(selectionThreshold(policy(), now), now - 60 * minute);
  });

  test("nothing to read when every rule is disabled", () => {
    const all = policy({ defaults: rule({ enabled: false }), tenants: { a: rule({ enabled: false }) } });
    assert.equal(selectionThreshold(all, now), undefined);
  });

  test("a row exactly at the index bound is excluded by both the query and qualify", () => {
    const bound = selectionThreshold(policy(), now) ?? Number.NaN;
    // The registry queries `lastActivityAt < bound`; qualify must agree on the boundary row.
    assert.equal(qualify(policy(), candidate({ lastActivityAt: bound }), now).close, false);
    assert.equal(qualify(policy(), candidate({ lastActivityAt: bound - 1 }), now).close, true);
  });
});

describe("checkTwilioActivity", () => {
  test("a customer message newer than the threshold means the conversation woke up", () => {
    const check = checkTwilioActivity(rule(), { at: now - 5 * minute, attributes: "{}" }, now);
    assert.deepEqual(check, { kind: "woke-up", lastMessageAt: now - 5 * minute });
  });

  test("a last message older than the threshold leaves it idle", () => {
    const check = checkTwilioActivity(rule(), { at: now - 61 * minute, attributes: "{}" }, now);
    assert.deepEqual(check, { kind: "still-idle", noticePosted: false });
  });

  test("no messages at all is idle", () => {
    assert.deepEqual(checkTwilioActivity(rule(), undefined, now), {
      kind: "still-idle",
      noticePosted: false,
    });
  });

  test("our own closing notice is not activity, and says the notice already went out", () => {
    const check = checkTwilioActivity(rule(), { at: now - 1000, attributes: closingNoticeAttributes() }, now);
    assert.deepEqual(check, { kind: "still-idle", noticePosted: true });
  });

  test("an unreadable message date is treated as activity (when unsure, do not close)", () => {
    const check = checkTwilioActivity(rule(), { at: Number.NaN, attributes: undefined }, now);
    assert.equal(check.kind, "woke-up");
  });

  test("isClosingNotice rejects other and malformed attributes", () => {
    assert.equal(isClosingNotice(closingNoticeAttributes()), true);
    for (const attributes of [undefined, "", "{", "null", "[]", '{"backboneCloser":"other"}', "{}"]) {
      assert.equal(isClosingNotice(attributes), false, String(attributes));
    }
  });
});

describe("closer configuration", () => {
  const env = { CONVERSATIONS_TABLE_NAME: "t" };

  test("defaults: 24 h idle, both closable states, 25 mutations/s, 10 in flight, Twilio re-check on", () => {
    const settings = parseCloserSettings(env);
    assert.equal(settings.policy.defaults.idleMs, 1440 * minute);
    assert.deepEqual(settings.policy.defaults.states, ["active", "inactive"]);
    assert.equal(settings.maxMutationsPerSecond, 25);
    assert.equal(settings.concurrency, 10);
    assert.equal(settings.verifyWithTwilio, true);
    assert.equal(settings.closingMessage, undefined);
    assert.equal(settings.safetyMarginMs, 15_000);
  });

  test("tenant sections override field by field and inherit the rest", () => {
    const parsed = parseCloserPolicy({
      CLOSER_IDLE_MINUTES: "120",
      CLOSER_NEVER_CLOSE_PRIORITIES: "High, vip",
      TENANT_CONFIG: JSON.stringify({
        tenants: {
          acme: { closer: { idleMinutes: 30, neverClosePriorities: ["urgent"] } },
          beta: { closer: { enabled: false } },
          gamma: { other: true },
        },
      }),
    });
    assert.deepEqual(parsed.defaults.neverClosePriorities, ["high", "vip"]);
    assert.deepEqual(parsed.tenants.acme, {
      enabled: true,
      idleMs: 30 * minute,
      neverClosePriorities: ["urgent"],
      states: ["active", "inactive"],
    });
    assert.equal(parsed.tenants.beta?.enabled, false);
    assert.equal(parsed.tenants.beta?.idleMs, 120 * minute);
    assert.equal(parsed.tenants.gamma, undefined);
  });

  test("rejects what would silently close the wrong conversations", () => {
    const bad = [
      { CLOSER_IDLE_MINUTES: "0" },
      { CLOSER_IDLE_MINUTES: "1.5" },
      { CLOSER_STATES: "active,closed" },
      { CLOSER_VERIFY_WITH_TWILIO: "yes" },
      { CLOSER_MAX_MUTATIONS_PER_SECOND: "0" },
      { TENANT_CONFIG: JSON.stringify({ tenants: { a: { closer: { idleMinutes: "30" } } } }) },
      { TENANT_CONFIG: JSON.stringify({ tenants: { a: { closer: { enabled: "no" } } } }) },
      { TENANT_CONFIG: JSON.stringify({ tenants: { a: { closer: { states: [] } } } }) },
      { TENANT_CONFIG: JSON.stringify({ tenants: { a: { closer: { neverClosePriorities: "high" } } } }) },
      { CLOSER_CLOSING_MESSAGE: "x".repeat(1601) },
    ];
    for (const overrides of bad) {
      assert.throws(
        () => parseCloserSettings({ ...env, ...overrides }),
        ConfigError,
        JSON.stringify(overrides),
      );
    }
  });
});
