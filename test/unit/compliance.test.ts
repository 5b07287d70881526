// The compliance use case against in-memory fakes of its ports: what reaches the mirror, what happens on
// STOP/START/HELP per channel, 21610 failures, retries by Twilio error class, and partial-failure replays.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";
import {
  type ComplianceDeps,
  type ConsentMessaging,
  type ConsentStore,
  type ParticipantBinding,
  processConsentBatch,
} from "../../lib/app/compliance.ts";
import type { QueueMessage } from "../../lib/app/ports.ts";
import type { QueueRecord } from "../../lib/app/sqs-batch.ts";
import { complianceSettingsLookup, DefaultComplianceTexts } from "../../lib/config/compliance-config.ts";
import {
  applyConsentChange,
  type ConsentRecord,
  type ConsentSubject,
  type SuppressionState,
} from "../../lib/domain/consent.ts";
import type { Envelope } from "../../lib/domain/queue-envelope.ts";
import type { TenantDirectory } from "../../lib/domain/tenants.ts";
import { TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import type { QueueName } from "../../lib/resources.ts";

// ---- Fakes -------------------------------------------------------------------------------------------

const subjectKey = (subject: ConsentSubject) => `${subject.tenant}|${subject.channel}|${subject.address}`;

class MemoryConsentStore implements ConsentStore {
  readonly scopes = new Map<string, Map<string, SuppressionState>>();
  readonly records = new Map<string, { record: ConsentRecord; effects: Set<string> }>();

  async states(subject: ConsentSubject) {
    return [...(this.scopes.get(subjectKey(subject))?.values() ?? [])];
  }

  async apply(subject: ConsentSubject, scope: string, change: Parameters<ConsentStore["apply"]>[2]) {
    const key = subjectKey(subject);
    const byScope = this.scopes.get(key) ?? new Map<string, SuppressionState>();
    this.scopes.set(key, byScope);
    const decision = applyConsentChange(scope, byScope.get(scope), change);
    byScope.set(scope, decision.state);
    return decision;
  }

  async record(record: ConsentRecord) {
    const key = `${subjectKey(record.subject)}|${record.eventId}`;
    const existing = this.records.get(key);
    if (existing) return { effectsDone: new Set(existing.effects) };
    this.records.set(key, { record, effects: new Set() });
    return { effectsDone: new Set<string>() };
  }

  async markDone(record: ConsentRecord, effect: string) {
    const entry = this.records.get(`${subjectKey(record.subject)}|${record.eventId}`);
    assert.ok(entry, "markDone on a record that was never written");
    entry.effects.add(effect);
  }

  recordsFor(address: string) {
    return [...this.records.values()].filter((entry) => entry.record.subject.address === address);
  }
}

type Conversation = {
  state: "active" | "inactive" | "closed";
  messagingServiceSid: string;
  participants: Map<string, { address: string; proxyAddress: string }>;
  notices: { body: string; attributes: Record<string, unknown> }[];
};

type Op = "conversationsOf" | "participant" | "removeParticipant" | "postNotice" | "sendText";

class FakeTwilio implements ConsentMessaging {
  readonly conversations = new Map<string, Conversation>();
  readonly texts: { from: string; to: string; body: string }[] = [];
  readonly calls: Op[] = [];
  readonly failures: { op: Op; error: Error; count: number }[] = [];
  blockedRecipients = new Set<string>();

  addConversation(sid: string, messagingServiceSid: string, state: Conversation["state"] = "active") {
    this.conversations.set(sid, { state, messagingServiceSid, participants: new Map(), notices: [] });
  }

  addParticipant(conversationSid: string, participantSid: string, address: string, proxyAddress: string) {
    this.conversations.get(conversationSid)?.participants.set(participantSid, { address, proxyAddress });
  }

  failNext(op: Op, error: Error, count = 1) {
    this.failures.push({ op, error, count });
  }

  #enter(op: Op) {
    this.calls.push(op);
    const failure = this.failures.find((f) => f.op === op && f.count > 0);
    if (failure) {
      failure.count -= 1;
      throw failure.error;
    }
  }

  async conversationsOf(address: string): Promise<ParticipantBinding[]> {
    this.#enter("conversationsOf");
    const found: ParticipantBinding[] = [];
    for (const [conversationSid, conversation] of this.conversations) {
      if (conversation.state === "closed") continue;
      for (const [participantSid, binding] of conversation.participants) {
        if (binding.address !== address) continue;
        found.push({
          conversationSid,
          participantSid,
          ...binding,
          messagingServiceSid: conversation.messagingServiceSid,
        });
      }
    }
    return found;
  }

  async participant(conversationSid: string, participantSid: string) {
    this.#enter("participant");
    const conversation = this.conversations.get(conversationSid);
    const binding = conversation?.participants.get(participantSid);
    if (!conversation || !binding) return undefined;
    return {
      conversationSid,
      participantSid,
      ...binding,
      messagingServiceSid: conversation.messagingServiceSid,
    };
  }

  async removeParticipant(conversationSid: string, participantSid: string) {
    this.#enter("removeParticipant");
    const removed = this.conversations.get(conversationSid)?.participants.delete(participantSid);
    return removed ? ("removed" as const) : ("already-gone" as const);
  }

  async postNotice(conversationSid: string, body: string, attributes: Readonly<Record<string, unknown>>) {
    this.#enter("postNotice");
    this.conversations.get(conversationSid)?.notices.push({ body, attributes: { ...attributes } });
  }

  async sendText(message: { from: string; to: string; body: string }) {
    this.#enter("sendText");
    if (this.blockedRecipients.has(message.to)) return "blocked" as const;
    this.texts.push(message);
    return "sent" as const;
  }

  participantsOf(conversationSid: string) {
    return [...(this.conversations.get(conversationSid)?.participants.keys() ?? [])];
  }
}

class FakeQueue {
  readonly sent: { queue: QueueName; message: QueueMessage }[] = [];
  async send(queue: QueueName, message: QueueMessage) {
    this.sent.push({ queue, message });
  }
}

// ---- Fixtures ----------------------------------------------------------------------------------------

const Person = "+14155550100";
const OurNumber = "+15005550006";
const OtherNumber = "+15005550007";
const MG = `MG${"a".repeat(32)}`;
const OtherMG = `MG${"b".repeat(32)}`;
const T0 = 1_790_000_000_000;

let store: MemoryConsentStore;
let twilio: FakeTwilio;
let queue: FakeQueue;
let sleeps: number[];

const deps = (tenantSettings: Record<string, unknown> = {}): ComplianceDeps => {
  const directory: TenantDirectory = {
    defaultTenant: "default",
    senders: {},
    tenants: { default: { compliance: tenantSettings } },
  };
  return {
    tenants: directory,
    settings: complianceSettingsLookup(directory),
    store,
    twilio,
    queue,
    now: () => T0 + 60_000,
    retry: {
      attempts: 4,
      baseDelayMs: 100,
      maxDelayMs: 1_000,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.5,
    },
  };
};

let sequence = 0;
const inbound = (body: string, overrides: Record<string, string> = {}, receivedAt = T0): Envelope => {
  sequence += 1;
  return {
    v: 1,
    eventId: `msg-in:SM${sequence}`,
    kind: "messaging.inbound",
    receivedAt,
    params: { MessageSid: `SM${sequence}`, From: Person, To: OurNumber, Body: body, ...overrides },
  };
};

const whatsapp = (body: string, overrides: Record<string, string> = {}, receivedAt = T0) =>
  inbound(body, { From: `whatsapp:${Person}`, To: `whatsapp:${OurNumber}`, ...overrides }, receivedAt);

const statusFailure = (errorCode: string): Envelope => {
  sequence += 1;
  return {
    v: 1,
    eventId: `msg-status:SM${sequence}:undelivered`,
    kind: "messaging.status",
    receivedAt: T0,
    params: {
      MessageSid: `SM${sequence}`,
      MessageStatus: "failed",
      ErrorCode: errorCode,
      To: Person,
      From: OurNumber,
    },
  };
};

const toRecord = (envelope: Envelope | string, group?: string, receiveCount = 1): QueueRecord => {
  sequence += 1;
  const body = typeof envelope === "string" ? envelope : JSON.stringify(envelope);
  const from = typeof envelope === "string" ? "x" : String(envelope.params.From ?? envelope.params.To);
  return {
    messageId: `m-${sequence}`,
    body,
    attributes: { MessageGroupId: group ?? `addr:${from}`, ApproximateReceiveCount: String(receiveCount) },
  };
};

const processOne = async (
  envelope: Envelope | string,
  options: { deps?: ComplianceDeps; receiveCount?: number } = {},
) => {
  const result = await processConsentBatch(
    options.deps ?? deps(),
    [toRecord(envelope, undefined, options.receiveCount)],
    () => 30_000,
  );
  const [record] = result.records;
  assert.ok(record);
  return { result, record, report: record.report };
};

beforeEach(() => {
  store = new MemoryConsentStore();
  twilio = new FakeTwilio();
  queue = new FakeQueue();
  sleeps = [];
  twilio.addConversation("CH-same-sender", MG);
  twilio.addParticipant("CH-same-sender", "MB-1", Person, OurNumber);
  twilio.addConversation("CH-other-sender", OtherMG);
  twilio.addParticipant("CH-other-sender", "MB-2", Person, OtherNumber);
  twilio.addConversation("CH-someone-else", MG);
  twilio.addParticipant("CH-someone-else", "MB-3", "+14155550199", OurNumber);
});

// ---- Tests -------------------------------------------------------------------------------------------

describe("the mirror gate", () => {
  test("an ordinary inbound message is forwarded once, same id and group, marked as forwarded", async () => {
    const envelope = inbound("Hello, is my order ready?");
    const { report } = await processOne(envelope);
    assert.equal(report?.outcome, "forwarded");
    assert.equal(queue.sent.length, 1);
    const [sent] = queue.sent;
    assert.equal(sent?.queue, "mirror");
    assert.equal(sent?.message.deduplicationId, envelope.eventId);
    assert.equal(sent?.message.groupKey, `addr:${Person}`);
    assert.deepEqual(JSON.parse(sent?.message.body ?? ""), { ...envelope, forwardedBy: "compliance" });
  });

  test("keyword messages are answered here and not mirrored", async () => {
    for (const body of ["STOP", "START", "HELP"]) await processOne(inbound(body));
    assert.equal(queue.sent.length, 0);
  });

  test("a suppressed person's ordinary message is recorded but not mirrored", async () => {
    await processOne(inbound("STOP"));
    const { report } = await processOne(inbound("hello?", {}, T0 + 1000));
    assert.equal(report?.outcome, "suppressed-inbound");
    assert.equal(queue.sent.length, 0);
    const actions = store.recordsFor(Person).map((entry) => entry.record.action);
    assert.deepEqual(actions.sort(), ["inbound-while-suppressed", "opt-out"]);
  });

  test("a message to another of our senders is still mirrored under sender scope", async () => {
    await processOne(inbound("STOP"));
    const { report } = await processOne(inbound("hello", { To: OtherNumber }, T0 + 1000));
    assert.equal(report?.outcome, "forwarded");
  });

  test("a channel compliance does not govern is passed through to the mirror", async () => {
    const { report } = await processOne(inbound("STOP", { From: "messenger:123456789" }));
    assert.equal(report?.outcome, "forwarded");
    assert.equal(queue.sent.length, 1);
  });
});

describe("STOP", () => {
  test("SMS: suppresses, removes the participant bound to that sender only, tells agents, lets Twilio's reply stand", async () => {
    const { report } = await processOne(inbound("stop", { MessagingServiceSid: MG }));
    assert.equal(report?.outcome, "opted-out");
    assert.deepEqual(twilio.participantsOf("CH-same-sender"), []);
    assert.deepEqual(twilio.participantsOf("CH-other-sender"), ["MB-2"]);
    assert.deepEqual(twilio.participantsOf("CH-someone-else"), ["MB-3"]);
    const notices = twilio.conversations.get("CH-same-sender")?.notices ?? [];
    assert.equal(notices.length, 1);
    assert.match(notices[0]?.body ?? "", /replied STOP and opted out/);
    assert.equal(notices[0]?.attributes.kind, "compliance");
    assert.deepEqual(twilio.texts, [], "no second confirmation on SMS");
    const [state] = await store.states({ tenant: "default", channel: "sms", address: Person });
    assert.equal(state?.status, "opted-out");
    assert.equal(state?.scope, MG);
  });

  test("WhatsApp: sends the configured confirmation from the number that was texted", async () => {
    twilio.addConversation("CH-wa", MG);
    twilio.addParticipant("CH-wa", "MB-wa", `whatsapp:${Person}`, `whatsapp:${OurNumber}`);
    const { report } = await processOne(whatsapp("Stop"), {
      deps: deps({ optOutConfirmation: "Vous êtes désinscrit." }),
    });
    assert.equal(report?.outcome, "opted-out");
    assert.deepEqual(twilio.texts, [
      { from: `whatsapp:${OurNumber}`, to: `whatsapp:${Person}`, body: "Vous êtes désinscrit." },
    ]);
    assert.deepEqual(twilio.participantsOf("CH-wa"), []);
    assert.deepEqual(twilio.participantsOf("CH-same-sender"), ["MB-1"], "the SMS binding is another channel");
  });

  test("WhatsApp: a second STOP through another path confirms nothing twice", async () => {
    await processOne(whatsapp("STOP"));
    await processOne(whatsapp("STOP", {}, T0 + 500));
    assert.equal(twilio.texts.length, 1);
  });

  test("SMS: a keyword Twilio does not know (extra language) is confirmed by us", async () => {
    const { report } = await processOne(inbound("Arrêt"), {
      deps: deps({ extraKeywords: { optOut: ["ARRET"] } }),
    });
    assert.equal(report?.outcome, "opted-out");
    assert.deepEqual(
      twilio.texts.map((text) => text.body),
      [DefaultComplianceTexts.optOutConfirmation],
    );
  });

  test("SMS: Twilio's OptOutType is honoured and its reply left alone", async () => {
    const { report } = await processOne(inbound("ARRETE", { OptOutType: "STOP" }));
    assert.equal(report?.outcome, "opted-out");
    assert.equal(report?.keyword, "ARRETE");
    assert.deepEqual(twilio.texts, []);
  });

  test("SMS with smsConfirmations: our confirmation meets Twilio's block (21610) and is not retried", async () => {
    twilio.blockedRecipients.add(Person);
    const { report, record } = await processOne(inbound("STOP"), { deps: deps({ smsConfirmations: true }) });
    assert.equal(record.ok, true);
    assert.ok(report?.actions.includes("reply-blocked-by-twilio"));
    assert.equal(twilio.calls.filter((op) => op === "sendText").length, 1);
  });

  test("scope all: removes the person from conversations of every sender", async () => {
    await processOne(inbound("STOP"), { deps: deps({ scope: "all" }) });
    assert.deepEqual(twilio.participantsOf("CH-same-sender"), []);
    assert.deepEqual(twilio.participantsOf("CH-other-sender"), []);
    const { report } = await processOne(inbound("hello", { To: OtherNumber }, T0 + 1), {
      deps: deps({ scope: "all" }),
    });
    assert.equal(report?.outcome, "suppressed-inbound");
  });

  test("a closed conversation is left alone (Twilio does not list it as bound)", async () => {
    twilio.addConversation("CH-closed", MG, "closed");
    twilio.addParticipant("CH-closed", "MB-c", Person, OurNumber);
    await processOne(inbound("STOP"));
    assert.deepEqual(twilio.participantsOf("CH-closed"), ["MB-c"]);
  });

  test("the consent record is the evidence: who, keyword, when, event id, sender", async () => {
    const envelope = inbound("STOP", { MessagingServiceSid: MG });
    await processOne(envelope);
    const [entry] = store.recordsFor(Person);
    assert.ok(entry);
    assert.deepEqual(
      {
        action: entry.record.action,
        keyword: entry.record.keyword,
        eventAt: entry.record.eventAt,
        eventId: entry.record.eventId,
        sender: entry.record.sender,
        scope: entry.record.scope,
        source: entry.record.source,
      },
      {
        action: "opt-out",
        keyword: "STOP",
        eventAt: T0,
        eventId: envelope.eventId,
        sender: { proxy: OurNumber, messagingServiceSid: MG },
        scope: MG,
        source: "messaging-inbound",
      },
    );
    assert.ok(entry.effects.has("removed:CH-same-sender"));
    assert.ok(entry.effects.has("notified:CH-same-sender"));
  });
});

describe("START", () => {
  test("WhatsApp: unsuppresses, confirms, and does not re-add the person anywhere", async () => {
    twilio.addConversation("CH-wa", MG);
    twilio.addParticipant("CH-wa", "MB-wa", `whatsapp:${Person}`, `whatsapp:${OurNumber}`);
    await processOne(whatsapp("STOP"));
    const { report } = await processOne(whatsapp("start", {}, T0 + 1000));
    assert.equal(report?.outcome, "opted-in");
    assert.deepEqual(twilio.participantsOf("CH-wa"), []);
    assert.deepEqual(
      twilio.texts.map((text) => text.body),
      [DefaultComplianceTexts.optOutConfirmation, DefaultComplianceTexts.optInConfirmation],
    );
    const { report: after } = await processOne(whatsapp("hi again", {}, T0 + 2000));
    assert.equal(after?.outcome, "forwarded");
  });

  test("SMS: unsuppresses without a reply of ours", async () => {
    await processOne(inbound("STOP"));
    await processOne(inbound("UNSTOP", {}, T0 + 1000));
    assert.deepEqual(twilio.texts, []);
    const { report } = await processOne(inbound("hello", {}, T0 + 2000));
    assert.equal(report?.outcome, "forwarded");
  });

  test("out of order: an older STOP processed after a newer START changes nothing", async () => {
    await processOne(whatsapp("START", {}, T0 + 5000));
    const { report } = await processOne(whatsapp("STOP", {}, T0));
    assert.equal(report?.outcome, "superseded");
    assert.equal(twilio.calls.includes("removeParticipant"), false);
    assert.equal(
      twilio.texts.filter((text) => text.body === DefaultComplianceTexts.optOutConfirmation).length,
      0,
    );
  });

  test("no opt-in confirmation when a newer STOP lands while the START is being processed", async () => {
    const realApply = store.apply.bind(store);
    store.apply = async (subject, scope, change) => {
      const decision = await realApply(subject, scope, change);
      if (change.action === "opt-in") {
        // Another ingress path (Conversations) delivers a later STOP concurrently.
        await realApply(subject, scope, {
          ...change,
          action: "opt-out",
          eventAt: change.eventAt + 1,
          eventId: "later-stop",
        });
      }
      return decision;
    };
    await processOne(whatsapp("START"));
    assert.deepEqual(twilio.texts, []);
  });
});

describe("HELP", () => {
  test("WhatsApp: replies with the tenant's help text", async () => {
    const { report } = await processOne(whatsapp("help"), {
      deps: deps({ helpText: "Call 0800 123 or reply STOP." }),
    });
    assert.equal(report?.outcome, "help");
    assert.deepEqual(twilio.texts, [
      { from: `whatsapp:${OurNumber}`, to: `whatsapp:${Person}`, body: "Call 0800 123 or reply STOP." },
    ]);
  });

  test("SMS: Twilio answers HELP itself unless smsConfirmations is on", async () => {
    await processOne(inbound("HELP"));
    assert.equal(twilio.texts.length, 0);
    await processOne(inbound("info"), { deps: deps({ smsConfirmations: true }) });
    assert.deepEqual(
      twilio.texts.map((text) => text.body),
      [DefaultComplianceTexts.helpText],
    );
  });

  test("an opted-out WhatsApp user still gets help (and stays opted out)", async () => {
    await processOne(whatsapp("STOP"));
    await processOne(whatsapp("HELP", {}, T0 + 1000));
    assert.equal(twilio.texts.at(-1)?.body, DefaultComplianceTexts.helpText);
    const { report } = await processOne(whatsapp("hello", {}, T0 + 2000));
    assert.equal(report?.outcome, "suppressed-inbound");
  });
});

describe("Conversations and 21610 sources", () => {
  test("onMessageAdded STOP from a WhatsApp participant: sender resolved through Twilio, removed, confirmed", async () => {
    twilio.addConversation("CH-wa", MG);
    twilio.addParticipant("CH-wa", "MB-wa", `whatsapp:${Person}`, `whatsapp:${OurNumber}`);
    const envelope: Envelope = {
      v: 1,
      eventId: "onMessageAdded:IM1",
      kind: "conversations.onMessageAdded",
      receivedAt: T0 + 900,
      params: {
        ConversationSid: "CH-wa",
        MessageSid: "IM1",
        MessagingServiceSid: MG,
        Author: `whatsapp:${Person}`,
        ParticipantSid: "MB-wa",
        Body: "STOP",
        DateCreated: new Date(T0).toISOString(),
      },
    };
    const result = await processConsentBatch(deps(), [toRecord(envelope, "conv:CH-wa")], () => 30_000);
    assert.equal(result.records[0]?.report?.outcome, "opted-out");
    assert.deepEqual(twilio.participantsOf("CH-wa"), []);
    assert.deepEqual(
      twilio.texts.map((text) => text.from),
      [`whatsapp:${OurNumber}`],
    );
    assert.equal(queue.sent.length, 0, "Conversations events are not forwarded by compliance");
    const [entry] = store.recordsFor(Person);
    assert.equal(entry?.record.eventAt, T0, "event time is Twilio's DateCreated");
  });

  test("onMessageAdded under a number-mapped tenant: our number is read first, the tenant's keywords apply", async () => {
    twilio.addConversation("CH-acme", MG);
    twilio.addParticipant("CH-acme", "MB-acme", `whatsapp:${Person}`, `whatsapp:${OurNumber}`);
    const directory: TenantDirectory = {
      defaultTenant: "default",
      senders: { [`whatsapp:${OurNumber}`]: "acme" },
      tenants: { acme: { compliance: { extraKeywords: { optOut: ["PARAR"] } } } },
    };
    const envelope: Envelope = {
      v: 1,
      eventId: "onMessageAdded:IM2",
      kind: "conversations.onMessageAdded",
      receivedAt: T0,
      params: {
        ConversationSid: "CH-acme",
        MessageSid: "IM2",
        MessagingServiceSid: MG,
        Author: `whatsapp:${Person}`,
        ParticipantSid: "MB-acme",
        Body: "¡Parar!",
      },
    };
    const tenantDeps = { ...deps(), tenants: directory, settings: complianceSettingsLookup(directory) };
    const result = await processConsentBatch(tenantDeps, [toRecord(envelope, "conv:CH-acme")], () => 30_000);
    assert.equal(result.records[0]?.report?.tenant, "acme");
    assert.equal(result.records[0]?.report?.outcome, "opted-out");
    const [state] = await store.states({ tenant: "acme", channel: "whatsapp", address: Person });
    assert.equal(state?.status, "opted-out");
  });

  test("a 21610 status callback suppresses and removes, without a confirmation", async () => {
    const { report } = await processOne(statusFailure("21610"));
    assert.equal(report?.outcome, "opted-out");
    assert.deepEqual(twilio.participantsOf("CH-same-sender"), []);
    assert.deepEqual(twilio.texts, []);
    assert.match(twilio.conversations.get("CH-same-sender")?.notices[0]?.body ?? "", /21610/);
    const [entry] = store.recordsFor(Person);
    assert.equal(entry?.record.decidedBy, "error-21610");
  });

  test("onDeliveryUpdated 21610 resolves the address from the participant", async () => {
    const envelope: Envelope = {
      v: 1,
      eventId: "onDeliveryUpdated:DY1:failed:x",
      kind: "conversations.onDeliveryUpdated",
      receivedAt: T0,
      params: {
        ConversationSid: "CH-same-sender",
        ParticipantSid: "MB-1",
        ErrorCode: "21610",
        Status: "failed",
      },
    };
    const result = await processConsentBatch(
      deps(),
      [toRecord(envelope, "conv:CH-same-sender")],
      () => 30_000,
    );
    assert.equal(result.records[0]?.report?.outcome, "opted-out");
    const [state] = await store.states({ tenant: "default", channel: "sms", address: Person });
    assert.equal(state?.status, "opted-out");
    assert.deepEqual(twilio.participantsOf("CH-same-sender"), []);
  });

  test("onDeliveryUpdated 21610 for a participant that is already gone is acknowledged", async () => {
    const envelope: Envelope = {
      v: 1,
      eventId: "onDeliveryUpdated:DY2:failed:x",
      kind: "conversations.onDeliveryUpdated",
      receivedAt: T0,
      params: { ConversationSid: "CH-same-sender", ParticipantSid: "MB-gone", ErrorCode: "21610" },
    };
    const result = await processConsentBatch(deps(), [toRecord(envelope, "conv:x")], () => 30_000);
    assert.equal(result.records[0]?.report?.outcome, "unresolved");
    assert.deepEqual(result.batchItemFailures, []);
  });

  test("a status callback without 21610 is not a consent event and is not forwarded", async () => {
    const { report } = await processOne(statusFailure("30003"));
    assert.equal(report?.outcome, "pass");
    assert.equal(queue.sent.length, 0);
  });
});

describe("failures, retries and replays", () => {
  test("20429 and 5xx are retried with backoff; the record succeeds", async () => {
    twilio.failNext("removeParticipant", new TwilioApiError("too many", { status: 429, code: 20429 }));
    twilio.failNext("postNotice", new TwilioApiError("down", { status: 503 }));
    const { record } = await processOne(inbound("STOP"));
    assert.equal(record.ok, true);
    assert.equal(sleeps.length, 2);
    assert.deepEqual(twilio.participantsOf("CH-same-sender"), []);
  });

  test("20404 on removal means someone already removed the participant: success", async () => {
    twilio.conversations.get("CH-same-sender")?.participants.clear();
    twilio.addParticipant("CH-same-sender", "MB-1", Person, OurNumber);
    const realRemove = twilio.removeParticipant.bind(twilio);
    twilio.removeParticipant = async (conversationSid, participantSid) => {
      await realRemove(conversationSid, participantSid);
      return "already-gone";
    };
    const { record, report } = await processOne(inbound("STOP"));
    assert.equal(record.ok, true);
    assert.equal(report?.actions.includes("participant-removed"), false);
    assert.equal(twilio.conversations.get("CH-same-sender")?.notices.length, 1, "agents are still told");
  });

  test("20003 fails the record at once (no retry) and only that record", async () => {
    twilio.failNext("conversationsOf", new TwilioApiError("auth", { status: 401, code: 20003 }));
    const bad = toRecord(inbound("STOP"));
    const good = toRecord(inbound("hello", { From: "+14155550111" }));
    const result = await processConsentBatch(deps(), [bad, good], () => 30_000);
    assert.deepEqual(result.batchItemFailures, [{ itemIdentifier: bad.messageId }]);
    assert.equal(sleeps.length, 0);
    assert.equal(twilio.calls.filter((op) => op === "conversationsOf").length, 1);
    assert.equal(result.records.find((r) => r.messageId === good.messageId)?.ok, true);
  });

  test("a failure holds back later records of the same person (FIFO group), not other people", async () => {
    twilio.failNext("conversationsOf", new TwilioApiError("bad request", { status: 400, code: 21211 }));
    const first = toRecord(inbound("STOP"));
    const second = toRecord(inbound("hello", {}, T0 + 1));
    const other = toRecord(inbound("hello", { From: "+14155550111" }));
    const result = await processConsentBatch(deps(), [first, second, other], () => 30_000);
    assert.deepEqual(
      result.batchItemFailures.map((f) => f.itemIdentifier),
      [first.messageId, second.messageId],
    );
    assert.equal(queue.sent.length, 1, "only the other person's message reached the mirror");
  });

  test("a malformed record fails every time (poison) until redrive moves it to the DLQ", async () => {
    const { record, result } = await processOne("{not json", { receiveCount: 5 });
    assert.equal(record.ok, false);
    assert.equal(record.receiveCount, 5);
    assert.equal(result.batchItemFailures.length, 1);
  });

  test("a retried record after a partial failure finishes the rest without repeating what was done", async () => {
    twilio.addConversation("CH-wa", MG);
    twilio.addParticipant("CH-wa", "MB-wa", `whatsapp:${Person}`, `whatsapp:${OurNumber}`);
    twilio.failNext("postNotice", new TwilioApiError("bad", { status: 400, code: 50000 }));
    const envelope = whatsapp("STOP");
    const first = await processOne(envelope);
    assert.equal(first.record.ok, false);
    assert.deepEqual(twilio.participantsOf("CH-wa"), [], "removed before the failure");
    assert.equal(twilio.texts.length, 0);

    const second = await processOne(envelope, { receiveCount: 2 });
    assert.equal(second.record.ok, true);
    assert.equal(second.report?.decision, "replayed");
    assert.equal(twilio.conversations.get("CH-wa")?.notices.length, 1, "notice posted on the retry");
    assert.equal(twilio.texts.length, 1, "confirmation sent once");

    const third = await processOne(envelope, { receiveCount: 3 });
    assert.equal(third.record.ok, true);
    assert.equal(twilio.conversations.get("CH-wa")?.notices.length, 1);
    assert.equal(twilio.texts.length, 1, "an exact replay repeats nothing");
  });

  test("retries stop when the invocation is about to run out of time", async () => {
    twilio.failNext("conversationsOf", new TwilioApiError("too many", { status: 429, code: 20429 }), 3);
    const result = await processConsentBatch(deps(), [toRecord(inbound("STOP"))], () => 500);
    assert.equal(result.batchItemFailures.length, 1);
    assert.equal(sleeps.length, 0);
  });
});
