// The consent state machine: monotonic in event time (out-of-order deliveries, replays and concurrent
// STOP/START converge on the same state whatever the processing order), scope resolution, and how
// queued events are read as consent signals.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  AllSenders,
  applyConsentChange,
  type ConsentChange,
  consentVersion,
  eventTimeOf,
  InvalidConsentEventError,
  parseChannelAddress,
  readConsentSignal,
  type SuppressionState,
  scopeFor,
  suppressionFor,
} from "../../lib/domain/consent.ts";
import type { Envelope } from "../../lib/domain/queue-envelope.ts";

const change = (action: ConsentChange["action"], eventAt: number, eventId = `ev-${action}-${eventAt}`) =>
  ({
    action,
    eventAt,
    eventId,
    keyword: action === "opt-out" ? "STOP" : "START",
    source: "messaging-inbound",
  }) as const;

/** Applies changes in the given order, like the store does one conditional write at a time. */
const run = (changes: readonly ConsentChange[], scope = "+15005550006") => {
  let state: SuppressionState | undefined;
  const outcomes: string[] = [];
  for (const next of changes) {
    const decision = applyConsentChange(scope, state, next);
    outcomes.push(`${decision.outcome}${decision.statusChanged ? "+changed" : ""}`);
    state = decision.state;
  }
  return { state, outcomes };
};

describe("state machine", () => {
  test("a first STOP suppresses and counts as a status change", () => {
    const { state, outcomes } = run([change("opt-out", 1000)]);
    assert.equal(state?.status, "opted-out");
    assert.equal(state?.previousStatus, "none");
    assert.deepEqual(outcomes, ["applied+changed"]);
  });

  test("STOP then START in order: the person is opted in again", () => {
    const { state, outcomes } = run([change("opt-out", 1000), change("opt-in", 2000)]);
    assert.equal(state?.status, "opted-in");
    assert.deepEqual(outcomes, ["applied+changed", "applied+changed"]);
  });

  test("out of order: a STOP sent after a START wins even when processed first", () => {
    const { state, outcomes } = run([change("opt-out", 2000), change("opt-in", 1000)]);
    assert.equal(state?.status, "opted-out");
    assert.equal(state?.eventAt, 2000);
    assert.deepEqual(outcomes, ["applied+changed", "superseded"]);
  });

  test("out of order: a START sent after a STOP wins even when processed first", () => {
    const { state } = run([change("opt-in", 2000), change("opt-out", 1000)]);
    assert.equal(state?.status, "opted-in");
  });

  test("replaying an event changes nothing and reports the original status change", () => {
    const stop = change("opt-out", 1000);
    const { state, outcomes } = run([stop, stop, stop]);
    assert.equal(state?.status, "opted-out");
    assert.deepEqual(outcomes, ["applied+changed", "replayed+changed", "replayed+changed"]);
  });

  test("a second STOP applies (newer) but is not a status change, so nobody is confirmed twice", () => {
    const { outcomes } = run([change("opt-out", 1000), change("opt-out", 2000, "other-path")]);
    assert.deepEqual(outcomes, ["applied+changed", "applied"]);
  });

  test("a replay after a newer event is superseded, not replayed", () => {
    const stop = change("opt-out", 1000);
    const { state, outcomes } = run([stop, change("opt-in", 2000), stop]);
    assert.equal(state?.status, "opted-in");
    assert.equal(outcomes[2], "superseded");
  });

  test("concurrent STOP and START at the same millisecond: opt-out wins in either order", () => {
    const stop = change("opt-out", 1000, "a-stop");
    const start = change("opt-in", 1000, "z-start");
    assert.equal(run([stop, start]).state?.status, "opted-out");
    assert.equal(run([start, stop]).state?.status, "opted-out");
  });

  test("any processing order of any events, with replays, converges on the newest event", () => {
    const events = fc.uniqueArray(
      fc.record({
        action: fc.constantFrom("opt-out" as const, "opt-in" as const),
        eventAt: fc.integer({ min: 0, max: 50 }),
        eventId: fc.string({ minLength: 1, maxLength: 4 }),
      }),
      { minLength: 1, maxLength: 8, selector: (event) => event.eventId },
    );
    fc.assert(
      fc.property(events, fc.func(fc.integer()), (list, order) => {
        const changes = list.map((item) => ({
          ...item,
          keyword: undefined,
          source: "messaging-inbound" as const,
        }));
        const shuffled = [...changes, ...changes.slice(0, 2)].sort(
          (a, b) => order(a.eventId) - order(b.eventId),
        );
        const newest = changes.reduce((best, item) =>
          consentVersion(item) > consentVersion(best) ? item : best,
        );
        const { state } = run(shuffled);
        assert.equal(state?.eventId, newest.eventId);
        assert.equal(state?.status, newest.action === "opt-out" ? "opted-out" : "opted-in");
      }),
      { numRuns: 300 },
    );
  });

  test("versions order numerically by event time, not by string length", () => {
    assert.ok(consentVersion(change("opt-in", 9_999)) < consentVersion(change("opt-in", 10_000)));
    assert.ok(consentVersion(change("opt-in", 1_000)) < consentVersion(change("opt-out", 1_000)));
  });
});

const state = (scope: string, status: SuppressionState["status"], eventAt: number): SuppressionState => ({
  scope,
  status,
  version: consentVersion({
    action: status === "opted-out" ? "opt-out" : "opt-in",
    eventAt,
    eventId: `${scope}-${eventAt}`,
  }),
  eventAt,
  eventId: `${scope}-${eventAt}`,
  keyword: undefined,
  source: "messaging-inbound",
  previousStatus: "none",
});

const MG = `MG${"1".repeat(32)}`;
const OtherMG = `MG${"2".repeat(32)}`;

describe("suppression across scopes", () => {
  test("a sender-scoped opt-out blocks that sender only", () => {
    const entries = [state("+15005550006", "opted-out", 1)];
    assert.ok(suppressionFor(entries, { proxy: "+15005550006", messagingServiceSid: undefined }));
    assert.equal(
      suppressionFor(entries, { proxy: "+15005550007", messagingServiceSid: undefined }),
      undefined,
    );
  });

  test("an all-senders opt-out blocks every sender", () => {
    const entries = [state(AllSenders, "opted-out", 1)];
    assert.ok(suppressionFor(entries, { proxy: "+15005550007", messagingServiceSid: MG }));
  });

  test("a Messaging Service opt-out blocks the whole pool", () => {
    const entries = [state(MG, "opted-out", 1)];
    assert.ok(suppressionFor(entries, { proxy: "+15005550099", messagingServiceSid: MG }));
    assert.equal(suppressionFor(entries, { proxy: "+15005550099", messagingServiceSid: OtherMG }), undefined);
  });

  test("the newest applicable entry decides: a later sender opt-in reopens only that sender", () => {
    const entries = [state(AllSenders, "opted-out", 1), state("+15005550006", "opted-in", 2)];
    assert.equal(
      suppressionFor(entries, { proxy: "+15005550006", messagingServiceSid: undefined }),
      undefined,
    );
    assert.ok(suppressionFor(entries, { proxy: "+15005550007", messagingServiceSid: undefined }));
  });

  test("an unknown Messaging Service is assumed covered only when asked to (pre-event hooks)", () => {
    const entries = [state(MG, "opted-out", 1)];
    const sender = { proxy: "+15005550006", messagingServiceSid: undefined };
    assert.equal(suppressionFor(entries, sender), undefined);
    assert.ok(suppressionFor(entries, sender, { unknownMayApply: true }));
  });

  test("an unknown number is assumed covered by a number-scoped opt-out when asked to (Messaging Service sends)", () => {
    const entries = [state("+15005550006", "opted-out", 1)];
    const sender = { proxy: undefined, messagingServiceSid: MG };
    assert.equal(suppressionFor(entries, sender), undefined);
    assert.ok(suppressionFor(entries, sender, { unknownMayApply: true }));
  });

  test("an opt-in for a scope that only may cover the sender never masks an opt-out that surely does", () => {
    const numberOnly = { proxy: "+15005550006", messagingServiceSid: undefined };
    // The number may belong to MG (opted out) or not; OtherMG's later opt-in is no reason to contact.
    assert.ok(
      suppressionFor([state(MG, "opted-out", 2), state(OtherMG, "opted-in", 3)], numberOnly, {
        unknownMayApply: true,
      }),
    );
    assert.ok(
      suppressionFor([state(AllSenders, "opted-out", 1), state(MG, "opted-in", 2)], numberOnly, {
        unknownMayApply: true,
      }),
    );
    assert.equal(
      suppressionFor([state(AllSenders, "opted-out", 1), state(MG, "opted-in", 2)], {
        ...numberOnly,
        messagingServiceSid: MG,
      }),
      undefined,
      "known to be MG's number: its opt-in reopens it",
    );
    assert.equal(
      suppressionFor([state(MG, "opted-out", 1), state("+15005550006", "opted-in", 2)], numberOnly, {
        unknownMayApply: true,
      }),
      undefined,
      "a later opt-in for this very number reopens it whichever service it is in",
    );
  });

  test("with unknown parts, suppressed exactly when some possible sender would be (oracle: every completion)", () => {
    const Numbers = ["+15005550006", "+15005550007"] as const;
    const Services = [MG, OtherMG] as const;
    const scopes = [AllSenders, ...Numbers, ...Services];
    const entries = fc
      .uniqueArray(
        fc.record({
          scope: fc.constantFrom(...scopes),
          status: fc.constantFrom("opted-out" as const, "opted-in" as const),
          eventAt: fc.integer({ min: 0, max: 10 }),
        }),
        { maxLength: 5, selector: (entry) => entry.scope },
      )
      .map((list) => list.map((entry) => state(entry.scope, entry.status, entry.eventAt)));
    const part = <T extends string>(values: readonly T[]) =>
      fc.option(fc.constantFrom(...values), { nil: undefined });
    fc.assert(
      fc.property(entries, part(Numbers), part(Services), (list, proxy, messagingServiceSid) => {
        // What the sender may really be: the unknown number is any number (or one without entries); the
        // unknown service any service, or none at all.
        const proxies = proxy === undefined ? [...Numbers, "+15005550099"] : [proxy];
        const services = messagingServiceSid === undefined ? [...Services, undefined] : [messagingServiceSid];
        const some = proxies.some((p) =>
          services.some((m) => suppressionFor(list, { proxy: p, messagingServiceSid: m }) !== undefined),
        );
        const decided = suppressionFor(list, { proxy, messagingServiceSid }, { unknownMayApply: true });
        assert.equal(decided !== undefined, some);
        if (decided !== undefined) assert.equal(decided.status, "opted-out");
      }),
      { numRuns: 2000 },
    );
  });

  test("scopeFor prefers the Messaging Service, falls back to the number, or covers all", () => {
    assert.equal(scopeFor("sender", { proxy: "+1500", messagingServiceSid: MG }), MG);
    assert.equal(
      scopeFor("sender", { proxy: "+15005550006", messagingServiceSid: undefined }),
      "+15005550006",
    );
    assert.equal(scopeFor("all", { proxy: "+15005550006", messagingServiceSid: MG }), AllSenders);
  });
});

const envelope = (
  kind: Envelope["kind"],
  params: Record<string, string>,
  receivedAt = 1_700_000_000_000,
): Envelope => ({
  v: 1,
  eventId: `${kind}:1`,
  kind,
  receivedAt,
  params,
});

describe("reading queued events", () => {
  test("addresses: SMS, WhatsApp and short codes are governed; other channels are not", () => {
    assert.deepEqual(parseChannelAddress("+14155550100"), { channel: "sms", address: "+14155550100" });
    assert.deepEqual(parseChannelAddress("whatsapp:+14155550100"), {
      channel: "whatsapp",
      address: "+14155550100",
    });
    assert.deepEqual(parseChannelAddress("12345"), { channel: "sms", address: "12345" });
    assert.equal(parseChannelAddress("messenger:1234567"), undefined);
    assert.equal(parseChannelAddress("agent-alice"), undefined);
  });

  test("an inbound WhatsApp message carries channel, person, our number and OptOutType", () => {
    const signal = readConsentSignal(
      envelope("messaging.inbound", {
        From: "whatsapp:+14155550100",
        To: "whatsapp:+15005550006",
        Body: "STOP",
        MessageSid: "SM1",
        OptOutType: "STOP",
      }),
    );
    assert.equal(signal.kind, "inbound");
    if (signal.kind !== "inbound") return;
    assert.equal(signal.channel, "whatsapp");
    assert.equal(signal.address, "+14155550100");
    assert.deepEqual(signal.sender, { proxy: "+15005550006", messagingServiceSid: undefined });
    assert.equal(signal.optOutType, "STOP");
    assert.equal(signal.eventAt, 1_700_000_000_000);
  });

  test("a 21610 status callback is an opt-out failure for the recipient; other statuses pass", () => {
    const failed = readConsentSignal(
      envelope("messaging.status", {
        To: "+14155550100",
        From: "+15005550006",
        ErrorCode: "21610",
        MessageSid: "SM2",
      }),
    );
    assert.equal(failed.kind, "opted-out-failure");
    if (failed.kind === "opted-out-failure")
      assert.deepEqual(failed.recipient, { channel: "sms", address: "+14155550100" });
    const delivered = readConsentSignal(
      envelope("messaging.status", { To: "+14155550100", MessageStatus: "delivered" }),
    );
    assert.equal(delivered.kind, "pass");
  });

  test("Conversations events use Twilio's DateCreated as event time; Messaging events the intake time", () => {
    const added = envelope("conversations.onMessageAdded", {
      Author: "+14155550100",
      ConversationSid: "CH1",
      DateCreated: "2026-11-24T10:00:00Z",
      Body: "STOP",
    });
    assert.equal(eventTimeOf(added), Date.parse("2026-11-24T10:00:00Z"));
    assert.equal(
      eventTimeOf({ ...added, params: { ...added.params, DateCreated: "garbage" } }),
      added.receivedAt,
    );
    assert.equal(
      eventTimeOf(envelope("messaging.inbound", { From: "+1", DateCreated: "2020-01-01T00:00:00Z" })),
      1_700_000_000_000,
    );
  });

  test("a chat user's message and a non-21610 delivery receipt carry no consent signal", () => {
    assert.equal(
      readConsentSignal(
        envelope("conversations.onMessageAdded", { Author: "agent-alice", ConversationSid: "CH1" }),
      ).kind,
      "pass",
    );
    assert.equal(
      readConsentSignal(
        envelope("conversations.onDeliveryUpdated", { ErrorCode: "30003", ConversationSid: "CH1" }),
      ).kind,
      "pass",
    );
  });

  test("malformed consent events are errors (they go to the DLQ), not silently dropped", () => {
    assert.throws(
      () => readConsentSignal(envelope("messaging.inbound", { To: "+1" })),
      InvalidConsentEventError,
    );
    assert.throws(
      () => readConsentSignal(envelope("conversations.onDeliveryUpdated", { ErrorCode: "21610" })),
      InvalidConsentEventError,
    );
  });
});
