// The mirror use case against in-memory ports. The fake Twilio keeps the rules the mirror depends on
// (unique names → 50353, one active conversation per address/proxy pair → 50416/50437, closed is final
// → 50377, deleted → 20404, capture of inbound messages by a bound pair, delivery of every post to the
// customers bound in the conversation) and yields between steps so concurrent calls really interleave.
// The fake stores mirror the DynamoDB adapter's conditions.
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";
import type { ConsentStateReader } from "../../lib/adapters/consent-store.ts";
import { consentSuppressionCheck } from "../../lib/adapters/consent-suppression-check.ts";
import {
  ConsentUnavailableError,
  RecipientOptedOutError,
  SentNotRecordedError,
  ThreadUnavailableError,
  UngatedInboundError,
} from "../../lib/app/errors.ts";
import { mirrorEvent } from "../../lib/app/mirror/index.ts";
import type {
  BindResult,
  HeldBinding,
  LedgerEntry,
  MirrorDeps,
  MirrorLedger,
  MirrorTwilio,
  OutboundSend,
  OutboundSendDeps,
  OutboundSendResult,
  RegistryState,
  RegistryWriter,
  SentMessage,
  ThreadInfo,
  ThreadMapping,
  ThreadMappings,
} from "../../lib/app/mirror/ports.ts";
import { sendOutbound } from "../../lib/app/mirror/send.ts";
import { processFifoBatch } from "../../lib/app/sqs-batch.ts";
import { ConfigError } from "../../lib/config/errors.ts";
import {
  DefaultMirrorSettings,
  durationMs,
  parseMirrorConfig,
  type TenantMirrorSettings,
} from "../../lib/config/mirror-config.ts";
import {
  applyConsentChange,
  type ConsentAction,
  type ConsentSubject,
  parseChannelAddress,
  type ScopeSetting,
  type Sender,
  type SuppressionState,
  scopeFor,
} from "../../lib/domain/consent.ts";
import {
  type CustomerKey,
  MirrorMarker,
  type OutboundStatus,
  statusRank,
  type ThreadMessage,
} from "../../lib/domain/mirror.ts";
import type { Envelope } from "../../lib/domain/queue-envelope.ts";
import type { TenantDirectory } from "../../lib/domain/tenants.ts";
import { TwilioApiError } from "../../lib/domain/twilio-errors.ts";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
let sidCounter = 0;
const sid = (prefix: string) => `${prefix}${(++sidCounter).toString(16).padStart(32, "0")}`;

// ---- Fake Twilio ------------------------------------------------------------------------------------

type FakeConversation = {
  sid: string;
  uniqueName: string | undefined;
  state: ThreadInfo["state"];
  attributes: string;
  messagingServiceSid: string | undefined;
  timers: { inactive: string | undefined; closed: string | undefined };
};
type FakeMessage = ThreadMessage & {
  conversationSid: string;
  contentSid: string | undefined;
  contentVariables: string | undefined;
};
/** One message reaching a customer's phone; `content` names the message (SM SID, or IM SID of a post). */
type Delivery = { address: string; content: string };
type Fault = { op: keyof MirrorTwilio; error: TwilioApiError; afterEffect: boolean };

class FakeTwilio implements MirrorTwilio {
  conversations = new Map<string, FakeConversation>();
  participants: { conversationSid: string; address: string; proxyAddress: string }[] = [];
  messages: FakeMessage[] = [];
  sent = new Map<string, SentMessage>();
  /**
   * What Twilio delivers to SMS/WhatsApp customers: every Messaging send, and every post in a
   * conversation they are bound in (not their own: Twilio attributes those to their participant). A
   * mirrored copy names the Messaging SID it copies, so a copy reaching the customer of the original
   * shows up as the same content delivered twice.
   */
  deliveries: Delivery[] = [];
  calls: (keyof MirrorTwilio)[] = [];
  faults: Fault[] = [];
  /** Runs before addCustomer touches state: lets a test make a binding appear "meanwhile". */
  beforeBind: (() => void) | undefined;
  readonly clock: () => number;
  constructor(clock: () => number) {
    this.clock = clock;
  }

  private async step<T>(op: keyof MirrorTwilio, effect: () => T): Promise<T> {
    this.calls.push(op);
    await tick();
    const index = this.faults.findIndex((fault) => fault.op === op);
    const fault = index === -1 ? undefined : this.faults.splice(index, 1)[0];
    if (fault !== undefined && !fault.afterEffect) throw fault.error;
    const result = effect();
    await tick();
    if (fault !== undefined) throw fault.error;
    return result;
  }

  count(op: keyof MirrorTwilio): number {
    return this.calls.filter((call) => call === op).length;
  }

  /** "address content" of every message that reached a customer more than once. */
  deliveredTwice(): string[] {
    const seen = this.deliveries.map((d) => `${d.address} ${d.content}`);
    return seen.filter((key, i) => seen.indexOf(key) !== i);
  }

  deliveriesTo(address: string): string[] {
    return this.deliveries.filter((d) => d.address === address).map((d) => d.content);
  }

  threadMessages(conversationSid: string): FakeMessage[] {
    return this.messages
      .filter((m) => m.conversationSid === conversationSid)
      .sort((a, b) => a.index - b.index);
  }

  /** A conversation made by someone else (e.g. autocreation) that binds address/proxy. */
  autocreated(address: string, proxyAddress: string): string {
    const conversation = this.newConversation(undefined, "{}");
    this.participants.push({ conversationSid: conversation.sid, address, proxyAddress });
    return conversation.sid;
  }

  /** What Twilio does with an inbound message whose pair is bound: it puts it into the conversation. */
  capture(address: string, proxyAddress: string, body: string): string | undefined {
    const holder = this.participants.find(
      (p) =>
        p.address === address &&
        p.proxyAddress === proxyAddress &&
        this.conversations.get(p.conversationSid)?.state !== "closed",
    );
    if (holder === undefined) return undefined;
    return this.append(holder.conversationSid, address, body, {}).messageSid;
  }

  /** An agent (or Flex) adds the customer to a conversation behind the mirror's back. */
  bind(conversationSid: string, address: string, proxyAddress: string): void {
    this.participants.push({ conversationSid, address, proxyAddress });
  }

  private newConversation(uniqueName: string | undefined, attributes: string): FakeConversation {
    const conversation: FakeConversation = {
      sid: sid("CH"),
      uniqueName,
      state: "active",
      attributes,
      messagingServiceSid: undefined,
      timers: { inactive: undefined, closed: undefined },
    };
    this.conversations.set(conversation.sid, conversation);
    return conversation;
  }

  private append(
    conversationSid: string,
    author: string,
    body: string | undefined,
    attributes: Record<string, unknown>,
    content: { contentSid?: string | undefined; contentVariables?: string | undefined } = {},
  ) {
    const index = this.threadMessages(conversationSid).length;
    const message: FakeMessage = {
      conversationSid,
      messageSid: sid("IM"),
      index,
      author,
      body,
      mediaCount: 0,
      attributes,
      createdAt: this.clock(),
      contentSid: content.contentSid,
      contentVariables: content.contentVariables,
    };
    this.messages.push(message);
    return message;
  }

  private find(sidOrName: string): FakeConversation | undefined {
    return (
      this.conversations.get(sidOrName) ??
      [...this.conversations.values()].find((c) => c.uniqueName === sidOrName)
    );
  }

  createThread: MirrorTwilio["createThread"] = (input) =>
    this.step("createThread", () => {
      if (this.find(input.uniqueName) !== undefined) return { kind: "name-taken" as const };
      const conversation = this.newConversation(input.uniqueName, input.attributes);
      conversation.messagingServiceSid = input.messagingServiceSid;
      conversation.timers = { inactive: input.timers.inactive, closed: input.timers.closed };
      return { kind: "created" as const, conversationSid: conversation.sid };
    });

  fetchThread: MirrorTwilio["fetchThread"] = (sidOrName) =>
    this.step("fetchThread", () => {
      const c = this.find(sidOrName);
      return c === undefined
        ? undefined
        : { conversationSid: c.sid, uniqueName: c.uniqueName, state: c.state };
    });

  deleteThread: MirrorTwilio["deleteThread"] = (conversationSid) =>
    this.step("deleteThread", () => {
      this.remove(conversationSid);
    });

  remove(conversationSid: string): void {
    this.conversations.delete(conversationSid);
    this.participants = this.participants.filter((p) => p.conversationSid !== conversationSid);
    this.messages = this.messages.filter((m) => m.conversationSid !== conversationSid);
  }

  addCustomer: MirrorTwilio["addCustomer"] = (conversationSid, binding) =>
    this.step("addCustomer", (): BindResult => {
      this.beforeBind?.();
      const conversation = this.conversations.get(conversationSid);
      if (conversation === undefined) throw new TwilioApiError("not found", { status: 404, code: 20404 });
      if (conversation.state === "closed") return { kind: "thread-closed" };
      const samePair = (p: (typeof this.participants)[number]) =>
        p.address === binding.address && p.proxyAddress === binding.proxyAddress;
      if (this.participants.some((p) => samePair(p) && p.conversationSid === conversationSid)) {
        return { kind: "already-bound" };
      }
      const holder = this.participants.find(
        (p) => samePair(p) && this.conversations.get(p.conversationSid)?.state !== "closed",
      );
      if (holder !== undefined) return { kind: "bound-elsewhere", holderSid: holder.conversationSid };
      this.participants.push({ conversationSid, ...binding });
      return { kind: "bound" };
    });

  bindingsOf: MirrorTwilio["bindingsOf"] = (address) =>
    this.step("bindingsOf", () =>
      this.participants
        .filter((p) => p.address === address)
        .flatMap((p): HeldBinding[] => {
          const c = this.conversations.get(p.conversationSid);
          return c === undefined
            ? []
            : [
                {
                  conversationSid: c.sid,
                  uniqueName: c.uniqueName,
                  state: c.state,
                  proxyAddress: p.proxyAddress,
                },
              ];
        }),
    );

  postMessage: MirrorTwilio["postMessage"] = (conversationSid, message) =>
    this.step("postMessage", () => {
      const conversation = this.conversations.get(conversationSid);
      if (conversation === undefined) return { kind: "thread-gone" as const };
      if (conversation.state === "closed") return { kind: "thread-closed" as const };
      const posted = this.append(
        conversationSid,
        message.author,
        message.body,
        JSON.parse(message.attributes),
        {
          contentSid: message.contentSid,
          contentVariables: message.contentVariables,
        },
      );
      const copyOf = posted.attributes.messagingMessageSid;
      for (const participant of this.participants) {
        if (participant.conversationSid !== conversationSid || participant.address === message.author)
          continue;
        this.deliveries.push({
          address: participant.address,
          content: typeof copyOf === "string" ? copyOf : posted.messageSid,
        });
      }
      return { kind: "posted" as const, messageSid: posted.messageSid };
    });

  participantBinding: MirrorTwilio["participantBinding"] = (conversationSid, address) =>
    this.step("participantBinding", () => {
      const participant = this.participants.find(
        (p) => p.conversationSid === conversationSid && p.address === address,
      );
      return participant === undefined ? undefined : { proxyAddress: participant.proxyAddress };
    });

  threadAttributes: MirrorTwilio["threadAttributes"] = (conversationSid) =>
    this.step("threadAttributes", () => this.conversations.get(conversationSid)?.attributes);

  updateThreadAttributes: MirrorTwilio["updateThreadAttributes"] = (conversationSid, attributes) =>
    this.step("updateThreadAttributes", () => {
      const conversation = this.conversations.get(conversationSid);
      if (conversation === undefined) return "gone" as const;
      if (conversation.state === "closed") return "thread-closed" as const;
      conversation.attributes = attributes;
      return "updated" as const;
    });

  recentMessages: MirrorTwilio["recentMessages"] = (conversationSid, limit) =>
    this.step("recentMessages", () =>
      this.conversations.has(conversationSid)
        ? this.threadMessages(conversationSid).reverse().slice(0, limit)
        : undefined,
    );

  updateMessageAttributes: MirrorTwilio["updateMessageAttributes"] = (
    conversationSid,
    messageSid,
    attributes,
  ) =>
    this.step("updateMessageAttributes", () => {
      const conversation = this.conversations.get(conversationSid);
      const message = this.messages.find((m) => m.messageSid === messageSid);
      if (conversation === undefined || message === undefined) return "gone" as const;
      if (conversation.state === "closed") return "thread-closed" as const;
      Object.assign(message, { attributes: JSON.parse(attributes) });
      return "updated" as const;
    });

  fetchSentMessage: MirrorTwilio["fetchSentMessage"] = (messageSid) =>
    this.step("fetchSentMessage", () => this.sent.get(messageSid));

  sendMessage: MirrorTwilio["sendMessage"] = (send: OutboundSend) =>
    this.step("sendMessage", () => {
      const messageSid = sid("SM");
      this.sent.set(messageSid, {
        sid: messageSid,
        from: send.from,
        to: send.to,
        body: send.body ?? "",
        direction: "outbound-api",
      });
      this.deliveries.push({ address: send.to, content: messageSid });
      return { sid: messageSid, status: "queued" };
    });
}

// ---- Fake stores (the same conditions as lib/adapters/conversation-mapping.ts) ---------------------

class MemoryThreads implements ThreadMappings {
  items = new Map<string, ThreadMapping>();
  private id = (key: CustomerKey) => `${key.tenantId}#${key.channel}#${key.address}`;
  async get(key: CustomerKey) {
    await tick();
    return this.items.get(this.id(key));
  }
  async put(key: CustomerKey, next: ThreadMapping, expected: string | undefined): Promise<ThreadMapping> {
    await tick();
    const current = this.items.get(this.id(key));
    if (current?.conversationSid === expected || (current === undefined && expected === undefined)) {
      this.items.set(this.id(key), next);
      return next;
    }
    return current ?? this.put(key, next, undefined);
  }
  async markBound(key: CustomerKey, conversationSid: string, binding: { proxyAddress: string; at: number }) {
    await tick();
    const current = this.items.get(this.id(key));
    if (current?.conversationSid === conversationSid) {
      this.items.set(this.id(key), { ...current, bound: true, boundAt: binding.at, ...binding });
    }
  }
}

type LedgerItem = { -readonly [K in keyof LedgerEntry]: LedgerEntry[K] };

class MemoryLedger implements MirrorLedger {
  items = new Map<string, LedgerItem>();
  claims = new Map<string, string>();
  failNextComplete = false;
  private item(sm: string): LedgerItem {
    let item = this.items.get(sm);
    if (item === undefined) {
      item = {
        messagingMessageSid: sm,
        state: undefined,
        conversationSid: undefined,
        messageSid: undefined,
        template: undefined,
        status: undefined,
        errorCode: undefined,
        appliedStatus: undefined,
        sendId: undefined,
      };
      this.items.set(sm, item);
    }
    return item;
  }
  async get(sm: string) {
    await tick();
    const item = this.items.get(sm);
    return item === undefined ? undefined : { ...item };
  }
  async begin(sm: string, intent: { conversationSid: string }) {
    await tick();
    const item = this.item(sm);
    if (item.state !== undefined && item.state !== "pending") return false;
    Object.assign(item, { state: "pending", conversationSid: intent.conversationSid });
    return true;
  }
  async complete(
    sm: string,
    posted: {
      conversationSid: string;
      messageSid: string;
      status?: { status: OutboundStatus; errorCode: string | undefined };
    },
  ) {
    await tick();
    if (this.failNextComplete) {
      this.failNextComplete = false;
      throw new Error("DynamoDB unavailable");
    }
    Object.assign(this.item(sm), {
      state: "posted",
      conversationSid: posted.conversationSid,
      messageSid: posted.messageSid,
      ...(posted.status === undefined
        ? {}
        : {
            status: posted.status.status,
            appliedStatus: posted.status.status,
            errorCode: posted.status.errorCode,
          }),
    });
  }
  async settle(
    sm: string,
    settled: {
      state: "captured" | "native" | "summarized";
      conversationSid: string | undefined;
      messageSid: string | undefined;
    },
  ) {
    await tick();
    const item = this.item(sm);
    if (item.state !== undefined && item.state !== "pending") return false;
    Object.assign(item, {
      state: settled.state,
      ...(settled.conversationSid === undefined ? {} : { conversationSid: settled.conversationSid }),
      ...(settled.messageSid === undefined ? {} : { messageSid: settled.messageSid }),
    });
    return true;
  }
  async claimMessage(messageSid: string, sm: string) {
    await tick();
    const owner = this.claims.get(messageSid);
    if (owner !== undefined && owner !== sm) return false;
    this.claims.set(messageSid, sm);
    return true;
  }
  async advanceStatus(sm: string, update: { status: OutboundStatus; errorCode: string | undefined }) {
    await tick();
    const item = this.items.get(sm);
    if (
      item?.state !== undefined &&
      (item.status === undefined || statusRank(item.status) < statusRank(update.status))
    ) {
      Object.assign(item, update);
    }
    return item === undefined ? undefined : { ...item };
  }
  async markApplied(sm: string, status: OutboundStatus) {
    await tick();
    const item = this.item(sm);
    if (item.appliedStatus === undefined || statusRank(item.appliedStatus) < statusRank(status)) {
      item.appliedStatus = status;
    }
  }
  async recordSend(sm: string, send: { template: string | undefined; sendId?: string | undefined }) {
    await tick();
    const item = this.item(sm);
    if (send.template !== undefined) item.template = send.template;
    if (send.sendId !== undefined) item.sendId = send.sendId;
  }
}

type RegistryRow = {
  tenantId: string;
  state: RegistryState;
  stateAt: number;
  lastActivityAt: number;
  outcome?: string;
};

class MemoryRegistry implements RegistryWriter {
  rows = new Map<string, RegistryRow>();
  async touch(input: { conversationSid: string; tenantId: string; at: number }) {
    const row = this.rows.get(input.conversationSid);
    if (row === undefined) {
      this.rows.set(input.conversationSid, {
        tenantId: input.tenantId,
        state: "active",
        stateAt: 0,
        lastActivityAt: input.at,
      });
    } else if (row.lastActivityAt < input.at) row.lastActivityAt = input.at;
  }
  async setState(input: {
    conversationSid: string;
    tenantId: string;
    state: RegistryState;
    at: number;
    outcome?: string | undefined;
  }) {
    const row = this.rows.get(input.conversationSid);
    if (row !== undefined && row.stateAt > input.at) return false;
    this.rows.set(input.conversationSid, {
      tenantId: row?.tenantId ?? input.tenantId,
      lastActivityAt: row?.lastActivityAt ?? input.at,
      state: input.state,
      stateAt: input.at,
      ...(input.outcome === undefined ? {} : { outcome: input.outcome }),
    });
    return true;
  }
}

/**
 * The consent table's suppression states, written the way compliance writes them: the scope from the
 * tenant's setting and our side of the exchange (`scopeFor`), the state from `applyConsentChange`.
 */
class MemoryConsent implements ConsentStateReader {
  items = new Map<string, Map<string, SuppressionState>>();
  failure: Error | undefined;
  reads = 0;
  private events = 0;

  private id(subject: ConsentSubject): string {
    return `${subject.tenant}#${subject.channel}#${subject.address}`;
  }

  async states(subject: ConsentSubject): Promise<readonly SuppressionState[]> {
    this.reads += 1;
    await tick();
    if (this.failure !== undefined) throw this.failure;
    return [...(this.items.get(this.id(subject))?.values() ?? [])];
  }

  /** `person` (Twilio form) sent STOP/START to `sender` at event time `eventAt`. */
  change(
    action: ConsentAction,
    person: string,
    input: { sender: Sender; eventAt: number; tenant?: string; scope?: ScopeSetting },
  ): void {
    const parsed = parseChannelAddress(person);
    assert.ok(parsed);
    const subject = { tenant: input.tenant ?? "acme", ...parsed };
    const scope = scopeFor(input.scope ?? "sender", input.sender);
    const scopes = this.items.get(this.id(subject)) ?? new Map<string, SuppressionState>();
    this.events += 1;
    const decision = applyConsentChange(scope, scopes.get(scope), {
      action,
      eventAt: input.eventAt,
      eventId: `msg-in:SM${this.events}`,
      keyword: action === "opt-out" ? "STOP" : "START",
      source: "messaging-inbound",
    });
    scopes.set(scope, decision.state);
    this.items.set(this.id(subject), scopes);
  }
}

// ---- Fixtures ---------------------------------------------------------------------------------------

const Customer = "+14155550100";
const AcmeNumber = "+15005550006";
const GlobexService = `MG${"1".repeat(32)}`;
const WhatsAppSender = "whatsapp:+15005550007";
/** Acme's second number: Conversations would deliver from the binding's proxy, not from this one. */
const AcmeOtherNumber = "+15005550008";

const directory: TenantDirectory = {
  defaultTenant: "default",
  senders: {
    [AcmeNumber]: "acme",
    [AcmeOtherNumber]: "acme",
    [WhatsAppSender]: "acme",
    [GlobexService]: "globex",
  },
  tenants: {},
};

let now: number;
let twilio: FakeTwilio;
let threads: MemoryThreads;
let ledger: MemoryLedger;
let registry: MemoryRegistry;
let settings: Record<string, TenantMirrorSettings>;
let consent: MemoryConsent;
let deps: MirrorDeps & Pick<OutboundSendDeps, "consent">;

beforeEach(() => {
  now = Date.UTC(2026, 5, 1, 12);
  twilio = new FakeTwilio(() => now);
  threads = new MemoryThreads();
  ledger = new MemoryLedger();
  registry = new MemoryRegistry();
  consent = new MemoryConsent();
  settings = {
    acme: {
      ...DefaultMirrorSettings,
      timers: { inactive: "PT12H", closed: "P3D" },
      messagingServiceSid: `MG${"a".repeat(32)}`,
    },
  };
  deps = {
    twilio,
    threads,
    ledger,
    registry,
    tenants: directory,
    settingsFor: (tenantId) => settings[tenantId] ?? DefaultMirrorSettings,
    now: () => now,
    retry: { sleep: async () => undefined, random: () => 0.5 },
    consent: consentSuppressionCheck({ reader: consent }),
  };
});

const inbound = (params: Record<string, string> = {}): Envelope => {
  const messageSid = params.MessageSid ?? sid("SM");
  return {
    v: 1,
    eventId: `msg-in:${messageSid}`,
    kind: "messaging.inbound",
    receivedAt: now,
    forwardedBy: "compliance",
    params: {
      MessageSid: messageSid,
      From: Customer,
      To: AcmeNumber,
      Body: "Hello",
      NumMedia: "0",
      ...params,
    },
  };
};

const status = (
  messageSid: string,
  messageStatus: string,
  params: Record<string, string> = {},
): Envelope => ({
  v: 1,
  eventId: `msg-status:${messageSid}:${messageStatus}`,
  kind: "messaging.status",
  receivedAt: now,
  params: { MessageSid: messageSid, MessageStatus: messageStatus, From: AcmeNumber, To: Customer, ...params },
});

const conversationsEvent = (eventType: string, params: Record<string, string>): Envelope => ({
  v: 1,
  eventId: `${eventType}:${sid("EV")}`,
  kind: `conversations.${eventType}` as Envelope["kind"],
  receivedAt: now,
  params: { EventType: eventType, ...params },
});

const messagingSid = (result: OutboundSendResult) => {
  assert.equal(result.via, "messaging");
  return { sid: result.via === "messaging" ? result.sid : "" };
};

const conversationSend = (result: OutboundSendResult) => {
  assert.equal(result.via, "conversation");
  return result.via === "conversation" ? result : { conversationSid: "", messageSid: "" };
};

const onlyConversation = () => {
  assert.equal(twilio.conversations.size, 1, "exactly one conversation");
  const [conversation] = twilio.conversations.values();
  assert.ok(conversation);
  return conversation;
};

// ---- Inbound ----------------------------------------------------------------------------------------

describe("inbound messages", () => {
  test("the first message creates the customer's thread, binds them and posts the message once", async () => {
    const envelope = inbound({
      Body: "",
      NumMedia: "1",
      MediaUrl0: "https://api.twilio.com/media/ME1",
      MediaContentType0: "image/png",
    });
    const result = await mirrorEvent(deps, envelope);

    const conversation = onlyConversation();
    assert.equal(result.outcome, "mirrored");
    assert.equal(result.conversationSid, conversation.sid);
    assert.equal(conversation.uniqueName, "t_acme_sms_14155550100");
    assert.deepEqual(JSON.parse(conversation.attributes), {
      mirroredBy: MirrorMarker,
      tenantId: "acme",
      channel: "sms",
      generation: 1,
    });
    assert.deepEqual(conversation.timers, { inactive: "PT12H", closed: "P3D" });
    assert.equal(conversation.messagingServiceSid, `MG${"a".repeat(32)}`);
    assert.deepEqual(twilio.participants, [
      { conversationSid: conversation.sid, address: Customer, proxyAddress: AcmeNumber },
    ]);
    const [message, ...rest] = twilio.threadMessages(conversation.sid);
    assert.equal(rest.length, 0);
    assert.equal(message?.author, Customer);
    assert.equal(message?.body, "[1 attachment]");
    assert.equal(message?.attributes.messagingMessageSid, envelope.params.MessageSid);
    assert.deepEqual(message?.attributes.media, [
      { url: "https://api.twilio.com/media/ME1", contentType: "image/png" },
    ]);
    assert.equal(registry.rows.get(conversation.sid)?.tenantId, "acme");
    assert.equal(registry.rows.get(conversation.sid)?.lastActivityAt, envelope.receivedAt);
  });

  test("the second message reuses the thread from the mapping without searching Twilio", async () => {
    await mirrorEvent(deps, inbound({ Body: "one" }));
    twilio.calls = [];
    now += 60_000;
    const result = await mirrorEvent(deps, inbound({ Body: "two" }));

    const conversation = onlyConversation();
    assert.equal(result.outcome, "mirrored");
    assert.deepEqual(
      twilio.threadMessages(conversation.sid).map((m) => m.body),
      ["one", "two"],
    );
    for (const op of ["bindingsOf", "createThread", "fetchThread", "addCustomer"] as const) {
      assert.equal(twilio.count(op), 0, `${op} is not on the hot path`);
    }
  });

  test("the tenant comes from the Messaging Service, then the receiving number, else the default", async () => {
    const viaService = await mirrorEvent(
      deps,
      inbound({ To: "+15005550099", MessagingServiceSid: GlobexService }),
    );
    const viaNumber = await mirrorEvent(deps, inbound({ From: "+14155550111" }));
    const fallback = await mirrorEvent(deps, inbound({ From: "+14155550122", To: "+15005550098" }));
    assert.deepEqual(
      [viaService.tenantId, viaNumber.tenantId, fallback.tenantId],
      ["globex", "acme", "default"],
    );
    const names = [...twilio.conversations.values()].map((c) => c.uniqueName).sort();
    assert.deepEqual(names, [
      "t_acme_sms_14155550111",
      "t_default_sms_14155550122",
      "t_globex_sms_14155550100",
    ]);
  });

  test("WhatsApp and SMS of the same number are separate threads", async () => {
    await mirrorEvent(deps, inbound());
    await mirrorEvent(deps, inbound({ From: `whatsapp:${Customer}`, To: WhatsAppSender }));
    const names = [...twilio.conversations.values()].map((c) => c.uniqueName).sort();
    assert.deepEqual(names, ["t_acme_sms_14155550100", "t_acme_whatsapp_14155550100"]);
  });

  test("redelivery of the same record posts nothing new", async () => {
    const envelope = inbound();
    await mirrorEvent(deps, envelope);
    const again = await mirrorEvent(deps, envelope);
    assert.equal(again.outcome, "duplicate");
    assert.equal(twilio.messages.length, 1);
  });

  test("a crash after posting is recovered by finding the copy by messagingMessageSid", async () => {
    const envelope = inbound();
    ledger.failNextComplete = true;
    await assert.rejects(mirrorEvent(deps, envelope), /DynamoDB unavailable/);
    assert.equal(twilio.messages.length, 1, "the post landed before the crash");

    const again = await mirrorEvent(deps, envelope);
    assert.equal(again.outcome, "duplicate");
    assert.equal(twilio.messages.length, 1);
    assert.equal((await ledger.get(envelope.params.MessageSid as string))?.state, "posted");
  });

  test("an ambiguous failure (503 after the post landed) is not posted twice", async () => {
    twilio.faults.push({
      op: "postMessage",
      error: new TwilioApiError("Service unavailable", { status: 503, code: 20503 }),
      afterEffect: true,
    });
    const result = await mirrorEvent(deps, inbound());
    assert.equal(result.outcome, "mirrored");
    assert.equal(twilio.messages.length, 1);
    assert.equal(twilio.count("postMessage"), 1);
  });

  test("20429 (never processed) is retried and posts once", async () => {
    twilio.faults.push({
      op: "postMessage",
      error: new TwilioApiError("Too many requests", { status: 429, code: 20429 }),
      afterEffect: false,
    });
    const result = await mirrorEvent(deps, inbound());
    assert.equal(result.outcome, "mirrored");
    assert.equal(twilio.messages.length, 1);
    assert.equal(twilio.count("postMessage"), 2);
  });

  test("a permanent Twilio error fails the record without retrying", async () => {
    twilio.faults.push({
      op: "postMessage",
      error: new TwilioApiError("Invalid body", { status: 400, code: 70002 }),
      afterEffect: false,
    });
    await assert.rejects(mirrorEvent(deps, inbound()), TwilioApiError);
    assert.equal(twilio.count("postMessage"), 1);
    assert.equal(twilio.messages.length, 0);
  });

  test("20 concurrent first messages create one conversation and post all 20 once", async () => {
    const envelopes = Array.from({ length: 20 }, (_, i) => inbound({ Body: `message ${i}` }));
    const results = await Promise.all(envelopes.map((envelope) => mirrorEvent(deps, envelope)));

    const conversation = onlyConversation();
    assert.ok(results.every((r) => r.outcome === "mirrored" && r.conversationSid === conversation.sid));
    const bodies = twilio.threadMessages(conversation.sid).map((m) => m.body);
    assert.deepEqual([...bodies].sort(), envelopes.map((e) => e.params.Body as string).sort());
    assert.equal(twilio.participants.length, 1, "one binding: the racers' 50437 count as success");
    assert.ok(twilio.count("createThread") > 1, "the race really happened (50353 → fetch by unique name)");
  });

  test("messages processed in order appear in the thread in that order", async () => {
    for (let i = 0; i < 20; i += 1) {
      now += 1_000;
      await mirrorEvent(deps, inbound({ Body: `message ${i}` }));
    }
    const conversation = onlyConversation();
    assert.deepEqual(
      twilio.threadMessages(conversation.sid).map((m) => m.body),
      Array.from({ length: 20 }, (_, i) => `message ${i}`),
    );
  });

  test("a lost mapping finds the existing thread by unique name (50353) instead of making another", async () => {
    await mirrorEvent(deps, inbound({ Body: "one" }));
    threads.items.clear();
    twilio.participants = [];
    await mirrorEvent(deps, inbound({ Body: "two" }));
    const conversation = onlyConversation();
    assert.equal(twilio.threadMessages(conversation.sid).length, 2);
  });

  test("a closed thread is replaced by a fresh one under the next generation", async () => {
    const first = await mirrorEvent(deps, inbound({ Body: "before" }));
    const old = twilio.conversations.get(first.conversationSid ?? "");
    assert.ok(old);
    old.state = "closed";
    now += 60_000;

    const second = await mirrorEvent(deps, inbound({ Body: "after" }));
    assert.equal(second.outcome, "mirrored");
    assert.notEqual(second.conversationSid, first.conversationSid);
    const fresh = twilio.conversations.get(second.conversationSid ?? "");
    assert.equal(fresh?.uniqueName, "t_acme_sms_14155550100_g2");
    assert.deepEqual(
      twilio.threadMessages(fresh?.sid ?? "").map((m) => m.body),
      ["after"],
    );
    assert.equal(registry.rows.get(old.sid)?.state, "closed");
    assert.equal((await threads.get({ tenantId: "acme", channel: "sms", address: Customer }))?.generation, 2);
  });

  test("a deleted thread is replaced too", async () => {
    const first = await mirrorEvent(deps, inbound());
    twilio.remove(first.conversationSid ?? "");
    const second = await mirrorEvent(deps, inbound());
    assert.equal(second.outcome, "mirrored");
    assert.equal(twilio.threadMessages(second.conversationSid ?? "").length, 1);
    assert.equal(registry.rows.get(first.conversationSid ?? "")?.state, "deleted");
  });

  for (const bindCustomer of [true, false]) {
    test(`with the mapping lost and generation 1 closed, the probe skips to a fresh generation (bind: ${bindCustomer})`, async () => {
      settings.acme = { ...DefaultMirrorSettings, bindCustomer };
      const first = await mirrorEvent(deps, inbound());
      const old = twilio.conversations.get(first.conversationSid ?? "");
      assert.ok(old);
      old.state = "closed";
      threads.items.clear();
      twilio.calls = [];
      const second = await mirrorEvent(deps, inbound());
      assert.equal(
        twilio.conversations.get(second.conversationSid ?? "")?.uniqueName,
        "t_acme_sms_14155550100_g2",
      );
      assert.equal(twilio.count("postMessage"), 1, "never tried to post into the closed thread");
    });
  }

  test("an inbound message that skipped the compliance gate is refused", async () => {
    const { forwardedBy: _, ...ungated } = inbound();
    await assert.rejects(mirrorEvent(deps, ungated), UngatedInboundError);
    assert.equal(twilio.calls.length, 0);
  });

  test("without binding, no participant is added and no message list is read", async () => {
    settings.acme = { ...DefaultMirrorSettings, bindCustomer: false };
    await mirrorEvent(deps, inbound());
    await mirrorEvent(deps, inbound());
    assert.equal(twilio.participants.length, 0);
    assert.equal(twilio.count("recentMessages"), 0);
    assert.equal(twilio.messages.length, 2);
  });
});

// ---- Conflicts and autocreation ----------------------------------------------------------------------

describe("bindings held elsewhere (autocreation, 50416)", () => {
  test("a customer already bound by autocreation: the mapping adopts that conversation and Twilio's copy counts", async () => {
    const autocreated = twilio.autocreated(Customer, AcmeNumber);
    // Twilio captured the message into the bound conversation; the number's webhook fired as well.
    twilio.capture(Customer, AcmeNumber, "Hi from autocreation");
    const result = await mirrorEvent(deps, inbound({ Body: "Hi from autocreation" }));

    assert.equal(result.outcome, "already-in-thread");
    assert.equal(result.conversationSid, autocreated);
    assert.equal(onlyConversation().sid, autocreated, "no thread of our own was left behind");
    assert.equal(twilio.count("createThread"), 0, "found by ParticipantConversations before creating");
    assert.equal(twilio.threadMessages(autocreated).length, 1, "nothing posted twice");
    const mapping = await threads.get({ tenantId: "acme", channel: "sms", address: Customer });
    assert.equal(mapping?.origin, "adopted");
  });

  test("equal texts are matched one to one; an uncaptured one is still posted", async () => {
    const autocreated = twilio.autocreated(Customer, AcmeNumber);
    twilio.capture(Customer, AcmeNumber, "ok");
    twilio.capture(Customer, AcmeNumber, "ok");
    const outcomes = [];
    for (let i = 0; i < 3; i += 1) outcomes.push((await mirrorEvent(deps, inbound({ Body: "ok" }))).outcome);
    assert.deepEqual(outcomes, ["already-in-thread", "already-in-thread", "mirrored"]);
    assert.equal(twilio.threadMessages(autocreated).length, 3);
  });

  test("50416 at bind time: our new thread is removed and the mapping points at the holder", async () => {
    let holder: string | undefined;
    twilio.beforeBind = () => {
      twilio.beforeBind = undefined;
      holder = twilio.autocreated(Customer, AcmeNumber);
    };
    const result = await mirrorEvent(deps, inbound());
    assert.ok(holder);
    assert.equal(result.conversationSid, holder);
    assert.equal(onlyConversation().sid, holder, "the orphan we created was deleted");
    assert.equal(
      (await threads.get({ tenantId: "acme", channel: "sms", address: Customer }))?.conversationSid,
      holder,
    );
  });

  test("50416 for an unbound mapping (binding was off) repairs the mapping to the holder", async () => {
    settings.acme = { ...DefaultMirrorSettings, bindCustomer: false };
    const first = await mirrorEvent(deps, inbound());
    const holder = twilio.autocreated(Customer, AcmeNumber);
    settings.acme = DefaultMirrorSettings;
    const second = await mirrorEvent(deps, inbound({ Body: "later" }));
    assert.notEqual(first.conversationSid, holder);
    assert.equal(second.conversationSid, holder);
    assert.equal(
      (await threads.get({ tenantId: "acme", channel: "sms", address: Customer }))?.conversationSid,
      holder,
    );
  });

  test("a thread that stays closed while we replace it gives up with a retryable error", async () => {
    twilio.postMessage = async () => ({ kind: "thread-closed" });
    await assert.rejects(mirrorEvent(deps, inbound()), ThreadUnavailableError);
  });
});

// ---- Outbound -----------------------------------------------------------------------------------------

describe("outbound messages (status callbacks)", () => {
  const systemMessages = () => twilio.messages.filter((m) => m.author === "system");

  test("a template send appears as a system message and its callbacks move its status forward only", async () => {
    const sent = messagingSid(
      await sendOutbound(deps, {
        to: `whatsapp:${Customer}`,
        from: WhatsAppSender,
        contentSid: `HX${"c".repeat(32)}`,
        contentVariables: '{"1":"Ada"}',
      }),
    );
    assert.equal(twilio.count("sendMessage"), 1, "no thread yet: sent through the Messaging API");
    const callback = (s: string, extra: Record<string, string> = {}) =>
      status(sent.sid, s, { From: WhatsAppSender, To: `whatsapp:${Customer}`, ...extra });

    const first = await mirrorEvent(deps, callback("sent"));
    assert.equal(first.outcome, "outbound-mirrored");
    const [message, ...rest] = systemMessages();
    assert.equal(rest.length, 0);
    assert.equal(message?.body, `[template HX${"c".repeat(32)}]`);
    assert.deepEqual(message?.attributes, {
      mirroredBy: MirrorMarker,
      direction: "outbound",
      channel: "whatsapp",
      messagingMessageSid: sent.sid,
      template: `HX${"c".repeat(32)}`,
      status: "sent",
      errorCode: null,
    });
    assert.equal(
      twilio.conversations.get(first.conversationSid ?? "")?.uniqueName,
      "t_acme_whatsapp_14155550100",
    );

    assert.equal((await mirrorEvent(deps, callback("read"))).outcome, "status-applied");
    assert.equal((await mirrorEvent(deps, callback("delivered"))).outcome, "status-stale");
    assert.equal((await mirrorEvent(deps, callback("sent"))).outcome, "status-stale");
    assert.equal(systemMessages().length, 1);
    assert.equal(systemMessages()[0]?.attributes.status, "read");
    assert.deepEqual(twilio.deliveriesTo(`whatsapp:${Customer}`), [sent.sid], "the copy reached no one");
  });

  test("callbacks out of order (delivered before sent) end delivered, with one message", async () => {
    twilio.sent.set("SM1", {
      sid: "SM1",
      from: AcmeNumber,
      to: Customer,
      body: "Your order shipped",
      direction: "outbound-api",
    });
    await mirrorEvent(deps, status("SM1", "delivered"));
    await mirrorEvent(deps, status("SM1", "sent"));
    await mirrorEvent(deps, status("SM1", "queued"));
    assert.equal(systemMessages().length, 1);
    assert.equal(systemMessages()[0]?.body, "Your order shipped");
    assert.equal(systemMessages()[0]?.attributes.status, "delivered");
  });

  test("a failure carries its error code and is not undone by a late sent", async () => {
    twilio.sent.set("SM2", {
      sid: "SM2",
      from: AcmeNumber,
      to: Customer,
      body: "hi",
      direction: "outbound-api",
    });
    await mirrorEvent(deps, status("SM2", "sent"));
    await mirrorEvent(deps, status("SM2", "undelivered", { ErrorCode: "30003" }));
    await mirrorEvent(deps, status("SM2", "sent"));
    assert.equal(systemMessages()[0]?.attributes.status, "undelivered");
    assert.equal(systemMessages()[0]?.attributes.errorCode, "30003");
  });

  test("a failed attribute update is applied on the retry although the status is already recorded", async () => {
    twilio.sent.set("SM3", {
      sid: "SM3",
      from: AcmeNumber,
      to: Customer,
      body: "hi",
      direction: "outbound-api",
    });
    await mirrorEvent(deps, status("SM3", "sent"));
    twilio.faults.push({
      op: "updateMessageAttributes",
      error: new TwilioApiError("bad", { status: 400, code: 70002 }),
      afterEffect: false,
    });
    await assert.rejects(mirrorEvent(deps, status("SM3", "delivered")));
    assert.equal(systemMessages()[0]?.attributes.status, "sent");
    assert.equal((await mirrorEvent(deps, status("SM3", "delivered"))).outcome, "status-applied");
    assert.equal(systemMessages()[0]?.attributes.status, "delivered");
  });

  test("first contact: the system copy is posted before the customer is bound, so Twilio does not send it again", async () => {
    twilio.sent.set("SM9", {
      sid: "SM9",
      from: AcmeNumber,
      to: Customer,
      body: "Welcome",
      direction: "outbound-api",
    });
    await mirrorEvent(deps, status("SM9", "sent"));
    const posted = twilio.calls.indexOf("postMessage");
    const bound = twilio.calls.indexOf("addCustomer");
    assert.ok(posted >= 0 && bound > posted, `post (${posted}) before bind (${bound})`);
    assert.deepEqual(
      twilio.participants.map((p) => [p.address, p.proxyAddress]),
      [[Customer, AcmeNumber]],
    );
    // The customer's reply then finds a bound thread.
    const reply = await mirrorEvent(deps, inbound({ Body: "thanks" }));
    assert.equal(reply.conversationSid, onlyConversation().sid);
    assert.equal(twilio.count("addCustomer"), 1);
  });

  test("a crash after posting the system message is recovered without a second copy", async () => {
    twilio.sent.set("SM8", {
      sid: "SM8",
      from: AcmeNumber,
      to: Customer,
      body: "hi",
      direction: "outbound-api",
    });
    ledger.failNextComplete = true;
    await assert.rejects(mirrorEvent(deps, status("SM8", "sent")), /DynamoDB unavailable/);
    assert.equal(systemMessages().length, 1);
    assert.equal((await mirrorEvent(deps, status("SM8", "delivered"))).outcome, "status-applied");
    assert.equal(systemMessages().length, 1);
    assert.equal(systemMessages()[0]?.attributes.status, "delivered");
  });

  test("outbound into an existing unbound thread lands after the customer's messages", async () => {
    settings.acme = { ...DefaultMirrorSettings, bindCustomer: false };
    await mirrorEvent(deps, inbound({ Body: "question" }));
    twilio.sent.set("SM4", {
      sid: "SM4",
      from: AcmeNumber,
      to: Customer,
      body: "answer",
      direction: "outbound-api",
    });
    await mirrorEvent(deps, status("SM4", "sent"));
    const conversation = onlyConversation();
    assert.deepEqual(
      twilio.threadMessages(conversation.sid).map((m) => [m.author, m.body]),
      [
        [Customer, "question"],
        ["system", "answer"],
      ],
    );
    assert.equal(twilio.count("participantBinding"), 1, "the mapping's 'unbound' was checked with Twilio");
  });

  test("an SMS that Conversations delivered (onDeliveryUpdated) is never mirrored back", async () => {
    await mirrorEvent(
      deps,
      conversationsEvent("onDeliveryUpdated", {
        ConversationSid: sid("CH"),
        MessageSid: sid("IM"),
        ChannelMessageSid: "SM5",
        DeliveryReceiptSid: sid("DY"),
        Status: "sent",
      }),
    );
    const result = await mirrorEvent(deps, status("SM5", "delivered"));
    assert.equal(result.outcome, "conversations-delivery");
    assert.equal(twilio.messages.length, 0);
  });

  test("in a bound thread, an agent's message delivered as SMS is recognised even before onDeliveryUpdated", async () => {
    const first = await mirrorEvent(deps, inbound({ Body: "question" }));
    // An agent answers inside Conversations; Twilio sends it to the customer as SM6.
    twilio.messages.push({
      conversationSid: first.conversationSid ?? "",
      messageSid: sid("IM"),
      index: 1,
      author: "agent@acme.example",
      body: "answer from agent",
      mediaCount: 0,
      attributes: {},
      createdAt: now,
      contentSid: undefined,
      contentVariables: undefined,
    });
    twilio.sent.set("SM6", {
      sid: "SM6",
      from: AcmeNumber,
      to: Customer,
      body: "answer from agent",
      direction: "outbound-api",
    });
    const result = await mirrorEvent(deps, status("SM6", "sent"));
    assert.equal(result.outcome, "conversations-delivery");
    assert.equal(twilio.threadMessages(first.conversationSid ?? "").length, 2);
  });

  test("received/receiving are inbound statuses and ignored", async () => {
    assert.equal((await mirrorEvent(deps, status("SM7", "received"))).outcome, "ignored");
    assert.equal(twilio.calls.length, 0);
  });
});

// ---- Outbound to a customer bound in their thread ----------------------------------------------------

describe("outbound to a customer bound in their thread (never delivered twice)", () => {
  const Template = `HX${"f".repeat(32)}`;
  const key = { tenantId: "acme", channel: "sms", address: Customer } as const;

  /** The customer wrote first: their thread exists and binds them to AcmeNumber. */
  const boundThread = async (from = Customer) => {
    const first = await mirrorEvent(deps, inbound({ From: from, Body: "hi" }));
    const conversationSid = first.conversationSid ?? "";
    assert.ok(twilio.participants.some((p) => p.conversationSid === conversationSid && p.address === from));
    twilio.calls = [];
    return conversationSid;
  };

  const summaryOf = (conversationSid: string): Record<string, unknown>[] =>
    JSON.parse(twilio.conversations.get(conversationSid)?.attributes ?? "{}").outboundNotMirrored ?? [];

  const delivery = (messageSid: string, deliveryStatus: string, extra: Record<string, string> = {}) =>
    conversationsEvent("onDeliveryUpdated", {
      ConversationSid: twilio.messages.find((m) => m.messageSid === messageSid)?.conversationSid ?? "",
      MessageSid: messageSid,
      ChannelMessageSid: `SM${messageSid.slice(2)}`,
      DeliveryReceiptSid: sid("DY"),
      ParticipantSid: sid("MB"),
      Status: deliveryStatus,
      ErrorCode: "0",
      DateUpdated: new Date(now).toISOString(),
      ...extra,
    });

  describe("sendOutbound", () => {
    test("posts a template into the bound thread: Conversations delivers it once and it is in the thread", async () => {
      const conversationSid = await boundThread();
      const sent = conversationSend(
        await sendOutbound(deps, {
          to: Customer,
          from: AcmeNumber,
          contentSid: Template,
          contentVariables: '{"1":"Ada"}',
          author: "acme-support",
        }),
      );

      assert.equal(sent.conversationSid, conversationSid);
      assert.equal(twilio.count("sendMessage"), 0, "not sent through the Messaging API");
      const [, posted, ...rest] = twilio.threadMessages(conversationSid);
      assert.equal(rest.length, 0);
      assert.equal(posted?.messageSid, sent.messageSid);
      assert.deepEqual(
        [posted?.author, posted?.body, posted?.contentSid, posted?.contentVariables],
        ["acme-support", undefined, Template, '{"1":"Ada"}'],
      );
      const { sendId, ...attributes } = posted?.attributes ?? {};
      assert.equal(typeof sendId, "string");
      assert.deepEqual(attributes, {
        mirroredBy: MirrorMarker,
        direction: "outbound",
        outbound: true,
        template: Template,
        status: null,
        errorCode: null,
      });
      assert.equal("messagingMessageSid" in attributes, false);
      assert.deepEqual(twilio.deliveriesTo(Customer), [sent.messageSid], "delivered once, by Conversations");
      const entry = await ledger.get(sent.messageSid);
      assert.deepEqual(
        [entry?.state, entry?.conversationSid, entry?.template, entry?.sendId],
        ["posted", conversationSid, Template, sendId],
      );
      assert.equal(registry.rows.get(conversationSid)?.lastActivityAt, now);
    });

    test("the author defaults to system; a plain body is posted as the body", async () => {
      const conversationSid = await boundThread();
      conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "Your table is ready" }),
      );
      const posted = twilio.threadMessages(conversationSid)[1];
      assert.deepEqual(
        [posted?.author, posted?.body, posted?.contentSid],
        ["system", "Your table is ready", undefined],
      );
    });

    test("without an author, the tenant's business author is posted; a send's own author wins", async () => {
      settings.acme = { ...(settings.acme ?? DefaultMirrorSettings), businessAuthor: "acme-support" };
      const conversationSid = await boundThread();
      const byTenant = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "Your table is ready" }),
      );
      const byAgent = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "See you soon", author: "agent-7" }),
      );
      assert.deepEqual(
        twilio.threadMessages(conversationSid).map((m) => [m.messageSid, m.author, m.body]),
        [
          [twilio.threadMessages(conversationSid)[0]?.messageSid, Customer, "hi"],
          [byTenant.messageSid, "acme-support", "Your table is ready"],
          [byAgent.messageSid, "agent-7", "See you soon"],
        ],
      );
      assert.deepEqual(twilio.deliveredTwice(), []);
      // The loop guard still knows the post as ours: it is marked, whoever the author is.
      const echoed = await mirrorEvent(
        deps,
        conversationsEvent("onMessageAdded", {
          ConversationSid: conversationSid,
          MessageSid: byTenant.messageSid,
          Author: "acme-support",
          Attributes: JSON.stringify(twilio.threadMessages(conversationSid)[1]?.attributes ?? {}),
          DateCreated: new Date(now).toISOString(),
        }),
      );
      assert.equal(echoed.outcome, "own-message");
    });

    test("its onDeliveryUpdated events move its status forward only, in any order", async () => {
      const conversationSid = await boundThread();
      const sent = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, contentSid: Template }),
      );
      const statusOf = () => twilio.threadMessages(conversationSid)[1]?.attributes;

      const outcomes = [];
      for (const [deliveryStatus, extra] of [
        ["delivered", {}],
        ["sent", {}],
        ["undelivered", { ErrorCode: "30003" }],
        ["read", {}],
        ["failed", { ErrorCode: "30008" }],
      ] as const) {
        outcomes.push((await mirrorEvent(deps, delivery(sent.messageSid, deliveryStatus, extra))).outcome);
      }
      assert.deepEqual(outcomes, [
        "status-applied",
        "status-stale",
        "status-stale",
        "status-applied",
        "status-stale",
      ]);
      assert.deepEqual(
        [statusOf()?.status, statusOf()?.errorCode, statusOf()?.template],
        ["read", null, Template],
      );
      assert.equal(typeof statusOf()?.sendId, "string", "the attributes keep their shape");
      assert.equal(twilio.threadMessages(conversationSid).length, 2, "updated in place, nothing posted");
    });

    test("a failure reported by onDeliveryUpdated carries its error code", async () => {
      const conversationSid = await boundThread();
      const sent = conversationSend(await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "hi" }));
      await mirrorEvent(deps, delivery(sent.messageSid, "sent"));
      await mirrorEvent(deps, delivery(sent.messageSid, "undelivered", { ErrorCode: "30003" }));
      const attributes = twilio.threadMessages(conversationSid)[1]?.attributes;
      assert.deepEqual([attributes?.status, attributes?.errorCode], ["undelivered", "30003"]);
    });

    test("the SMS Conversations sent for it is never mirrored back, whether onDeliveryUpdated comes first or not", async () => {
      const conversationSid = await boundThread();
      const first = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "Code 1234" }),
      );
      const second = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "Code 5678" }),
      );
      // First: onDeliveryUpdated names the SM before its status callback arrives.
      await mirrorEvent(deps, delivery(first.messageSid, "sent"));
      const afterEvent = await mirrorEvent(deps, status(`SM${first.messageSid.slice(2)}`, "delivered"));
      // Second: the status callback comes first; the text matches the post Conversations delivered.
      const early = `SM${"e".repeat(32)}`;
      twilio.sent.set(early, {
        sid: early,
        from: AcmeNumber,
        to: Customer,
        body: "Code 5678",
        direction: "outbound-api",
      });
      const beforeEvent = await mirrorEvent(deps, status(early, "sent"));

      assert.deepEqual(
        [afterEvent.outcome, beforeEvent.outcome],
        ["conversations-delivery", "conversations-delivery"],
      );
      assert.equal((await ledger.get(early))?.messageSid, second.messageSid);
      assert.equal(twilio.threadMessages(conversationSid).length, 3);
      assert.deepEqual(summaryOf(conversationSid), []);
      assert.deepEqual(twilio.deliveredTwice(), []);
    });

    test("a 503 after the post landed is found by its sendId: posted and delivered once", async () => {
      const conversationSid = await boundThread();
      twilio.faults.push({
        op: "postMessage",
        error: new TwilioApiError("Service unavailable", { status: 503, code: 20503 }),
        afterEffect: true,
      });
      const sent = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, contentSid: Template }),
      );
      assert.equal(twilio.count("postMessage"), 1);
      assert.equal(twilio.threadMessages(conversationSid).length, 2);
      assert.deepEqual(twilio.deliveriesTo(Customer), [sent.messageSid]);
    });

    test("a failure to record after the post says 'sent, do not resend'", async () => {
      await boundThread();
      ledger.failNextComplete = true;
      const error = await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "hi" }).catch(
        (e: unknown) => e,
      );
      assert.ok(error instanceof SentNotRecordedError);
      assert.equal(error.sent.via, "conversation");
      assert.equal(twilio.deliveriesTo(Customer).length, 1);
    });

    test("no thread: sent through the Messaging API; the mirror's copy is posted before the customer is bound", async () => {
      const sent = messagingSid(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, contentSid: Template }),
      );
      const result = await mirrorEvent(deps, status(sent.sid, "sent"));
      assert.equal(result.outcome, "outbound-mirrored");
      assert.equal(twilio.threadMessages(result.conversationSid ?? "")[0]?.attributes.template, Template);
      assert.ok(
        twilio.participants.some((p) => p.address === Customer),
        "bound after the copy",
      );
      assert.deepEqual(twilio.deliveriesTo(Customer), [sent.sid]);
    });

    test("a closed thread, or one the customer is not in, is no delivery path: Messaging API", async () => {
      const conversationSid = await boundThread();
      const conversation = twilio.conversations.get(conversationSid);
      assert.ok(conversation);
      conversation.state = "closed";
      messagingSid(await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "one" }));

      conversation.state = "active";
      twilio.participants = [];
      messagingSid(await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "two" }));
      assert.equal(twilio.count("postMessage"), 0, "a post would have reached no one, or a closed thread");
      assert.equal(twilio.count("sendMessage"), 2);
    });

    test("a thread that closes between the check and the post: the send falls back to the Messaging API", async () => {
      const conversationSid = await boundThread();
      const check = twilio.participantBinding;
      twilio.participantBinding = async (...args) => {
        const binding = await check(...args);
        const conversation = twilio.conversations.get(conversationSid);
        if (conversation !== undefined) conversation.state = "closed";
        return binding;
      };
      messagingSid(await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "hi" }));
      assert.equal(twilio.threadMessages(conversationSid).length, 1);
      assert.equal(registry.rows.get(conversationSid)?.state, "closed");
      assert.deepEqual(twilio.deliveredTwice(), []);
    });

    test("a send from another sender than the binding's proxy uses the Messaging API, and the mirror lists it", async () => {
      const conversationSid = await boundThread();
      const sent = messagingSid(
        await sendOutbound(deps, { to: Customer, from: AcmeOtherNumber, body: "hi" }),
      );
      const result = await mirrorEvent(deps, status(sent.sid, "sent", { From: AcmeOtherNumber }));
      assert.equal(result.outcome, "outbound-not-posted");
      assert.equal(twilio.threadMessages(conversationSid).length, 1);
      assert.deepEqual(twilio.deliveredTwice(), []);
    });
  });

  describe("sendOutbound never contacts someone who opted out", () => {
    const AcmeSender: Sender = { proxy: AcmeNumber, messagingServiceSid: undefined };
    const refusal = async (send: OutboundSend) => {
      const error = await sendOutbound(deps, send).then(
        () => assert.fail("the send went out"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof RecipientOptedOutError, `got ${String(error)}`);
      return error;
    };

    test("bound in their thread: RecipientOptedOutError before any Twilio call; nothing posted or delivered", async () => {
      const conversationSid = await boundThread();
      const recorded = ledger.items.size;
      consent.change("opt-out", Customer, { sender: AcmeSender, eventAt: now });
      const error = await refusal({ to: Customer, from: AcmeNumber, contentSid: Template });

      assert.deepEqual([error.channel, error.maskedAddress], ["sms", "+1415•••••00"]);
      assert.equal(error.message.includes(Customer), false, "the address is masked in the message");
      assert.deepEqual(twilio.calls, [], "not even a read: the thread would have been the delivery path");
      assert.equal(twilio.threadMessages(conversationSid).length, 1, "only the customer's own message");
      assert.deepEqual(twilio.deliveriesTo(Customer), []);
      assert.equal(ledger.items.size, recorded, "nothing recorded as sent");
    });

    test("no thread (the Messaging API path): refused, nothing sent", async () => {
      const customer = `whatsapp:${Customer}`;
      consent.change("opt-out", customer, {
        sender: { proxy: "+15005550007", messagingServiceSid: undefined },
        eventAt: now,
      });
      const error = await refusal({ to: customer, from: WhatsAppSender, contentSid: Template });

      assert.deepEqual([error.channel, error.maskedAddress], ["whatsapp", "+1415•••••00"]);
      assert.deepEqual(twilio.calls, []);
      assert.equal(twilio.sent.size, 0);
      assert.deepEqual(twilio.deliveriesTo(customer), []);
    });

    test("opted back in later in event time: sent; a START older than the STOP reopens nothing", async () => {
      const conversationSid = await boundThread();
      consent.change("opt-out", Customer, { sender: AcmeSender, eventAt: now - 2_000 });
      consent.change("opt-in", Customer, { sender: AcmeSender, eventAt: now - 1_000 });
      const sent = conversationSend(
        await sendOutbound(deps, { to: Customer, from: AcmeNumber, body: "Welcome back" }),
      );
      assert.deepEqual(twilio.deliveriesTo(Customer), [sent.messageSid]);
      assert.equal(sent.conversationSid, conversationSid);

      const other = "+14155550111";
      consent.change("opt-out", other, { sender: AcmeSender, eventAt: now - 1_000 });
      consent.change("opt-in", other, { sender: AcmeSender, eventAt: now - 2_000 });
      await refusal({ to: other, from: AcmeNumber, body: "Welcome back" });
      assert.deepEqual(twilio.deliveriesTo(other), []);
    });

    test("a store that cannot answer refuses the send (fail-closed): nothing sent or posted", async () => {
      const conversationSid = await boundThread();
      const outage = new Error("ProvisionedThroughputExceededException");
      consent.failure = outage;
      for (const send of [
        { to: Customer, from: AcmeNumber, body: "hi" },
        { to: "+14155550122", from: AcmeNumber, body: "hi" },
      ]) {
        const error = await sendOutbound(deps, send).catch((e: unknown) => e);
        assert.ok(error instanceof ConsentUnavailableError, `got ${String(error)}`);
        assert.equal(error.cause, outage);
      }
      assert.deepEqual(twilio.calls, []);
      assert.equal(twilio.threadMessages(conversationSid).length, 1);
      assert.deepEqual(twilio.deliveries, []);
    });

    test('scope "sender": the tenant\'s other numbers may still send; scope "all": none may, on that channel only', async () => {
      const bySender = "+14155550133";
      consent.change("opt-out", bySender, { sender: AcmeSender, eventAt: now, scope: "sender" });
      await refusal({ to: bySender, from: AcmeNumber, body: "hi" });
      messagingSid(await sendOutbound(deps, { to: bySender, from: AcmeOtherNumber, body: "hi" }));

      const byAll = "+14155550144";
      consent.change("opt-out", byAll, { sender: AcmeSender, eventAt: now, scope: "all" });
      await refusal({ to: byAll, from: AcmeNumber, body: "hi" });
      await refusal({ to: byAll, from: AcmeOtherNumber, body: "hi" });
      assert.deepEqual(twilio.deliveriesTo(byAll), []);
      messagingSid(await sendOutbound(deps, { to: `whatsapp:${byAll}`, from: WhatsAppSender, body: "hi" }));
      // Globex is another tenant: Acme's all-senders opt-out is not theirs.
      messagingSid(await sendOutbound(deps, { to: byAll, messagingServiceSid: GlobexService, body: "hi" }));
      assert.deepEqual(
        twilio.calls.filter((call) => call === "sendMessage").length,
        3,
        "only the sends the opt-outs do not cover went out",
      );
    });

    test("a send through a Messaging Service is refused by an opt-out from a number Twilio may pick", async () => {
      const person = "+14155550155";
      consent.change("opt-out", person, {
        tenant: "globex",
        sender: { proxy: "+15005550009", messagingServiceSid: undefined },
        eventAt: now,
      });
      await refusal({ to: person, messagingServiceSid: GlobexService, body: "hi" });

      const serviceWide = "+14155550166";
      consent.change("opt-out", serviceWide, {
        tenant: "globex",
        sender: { proxy: "+15005550009", messagingServiceSid: GlobexService },
        eventAt: now,
      });
      await refusal({ to: serviceWide, messagingServiceSid: GlobexService, body: "hi" });
      assert.deepEqual(twilio.calls, []);
    });

    test("channels without STOP (not SMS or WhatsApp) are not looked up", async () => {
      messagingSid(await sendOutbound(deps, { to: "messenger:1234567", from: AcmeNumber, body: "hi" }));
      assert.equal(consent.reads, 0);
    });
  });

  describe("Messaging-API sends made by anything else", () => {
    /** Another system sends through the same account: Twilio delivers it to the customer. */
    const foreignSend = async (body = "Your parcel is out for delivery", to = Customer) =>
      (await twilio.sendMessage({ to, from: AcmeNumber, body })).sid;

    test("are never posted into the thread: listed on the conversation's attributes, registry touched", async () => {
      const conversationSid = await boundThread();
      const before = JSON.parse(twilio.conversations.get(conversationSid)?.attributes ?? "{}");
      const sm = await foreignSend();
      now += 5_000;
      const result = await mirrorEvent(deps, status(sm, "sent"));

      assert.deepEqual(
        [result.outcome, result.reason, result.conversationSid],
        ["outbound-not-posted", "customer-bound", conversationSid],
      );
      assert.equal(twilio.count("postMessage"), 0);
      assert.equal(twilio.threadMessages(conversationSid).length, 1);
      assert.deepEqual(twilio.deliveredTwice(), [], "the customer got it once, from the Messaging API");
      assert.deepEqual(JSON.parse(twilio.conversations.get(conversationSid)?.attributes ?? "{}"), {
        ...before,
        outboundNotMirrored: [
          {
            messagingMessageSid: sm,
            status: "sent",
            errorCode: null,
            template: null,
            at: new Date(now).toISOString(),
          },
        ],
      });
      assert.equal((await ledger.get(sm))?.state, "summarized");
      assert.equal(registry.rows.get(conversationSid)?.lastActivityAt, now);
    });

    for (const [order, expected] of [
      [
        ["delivered", "sent", "queued"],
        ["delivered", null],
      ],
      [
        ["queued", "undelivered", "sent"],
        ["undelivered", "30003"],
      ],
      [
        ["undelivered", "read", "sent", "failed"],
        ["read", null],
      ],
      [
        ["sent", "failed", "undelivered", "queued"],
        ["failed", "30003"],
      ],
    ] as const) {
      test(`statuses stay monotonic out of order: ${order.join(" → ")}`, async () => {
        const conversationSid = await boundThread();
        const sm = await foreignSend();
        const outcomes = [];
        for (const callback of order) {
          const extra: Record<string, string> =
            callback === "failed" || callback === "undelivered" ? { ErrorCode: "30003" } : {};
          outcomes.push((await mirrorEvent(deps, status(sm, callback, extra))).outcome);
        }
        assert.equal(outcomes[0], "outbound-not-posted");
        const [entry, ...others] = summaryOf(conversationSid);
        assert.equal(others.length, 0);
        assert.deepEqual([entry?.status, entry?.errorCode], expected);
        assert.equal(twilio.threadMessages(conversationSid).length, 1, "never posted");
        assert.equal(twilio.count("postMessage"), 0);
      });
    }

    test("a redelivered callback changes nothing", async () => {
      const conversationSid = await boundThread();
      const sm = await foreignSend();
      await mirrorEvent(deps, status(sm, "delivered"));
      twilio.calls = [];
      assert.equal((await mirrorEvent(deps, status(sm, "delivered"))).outcome, "status-stale");
      assert.equal(twilio.count("updateThreadAttributes"), 0);
      assert.equal(summaryOf(conversationSid).length, 1);
    });

    test("the list keeps the newest 20, most recently updated last", async () => {
      const conversationSid = await boundThread();
      const sids = [];
      for (let i = 0; i < 25; i += 1) {
        const sm = await foreignSend(`notice ${i}`);
        sids.push(sm);
        await mirrorEvent(deps, status(sm, "sent"));
      }
      await mirrorEvent(deps, status(sids[10] ?? "", "delivered"));
      assert.deepEqual(
        summaryOf(conversationSid).map((entry) => entry.messagingMessageSid),
        [...sids.slice(5, 10), ...sids.slice(11), sids[10]],
      );
    });

    test("a binding the mapping does not know about (an agent added the customer) is checked, honoured and recorded", async () => {
      settings.acme = { ...DefaultMirrorSettings, bindCustomer: false };
      const conversationSid = (await mirrorEvent(deps, inbound({ Body: "hi" }))).conversationSid ?? "";
      twilio.bind(conversationSid, Customer, AcmeNumber);
      const result = await mirrorEvent(deps, status(await foreignSend(), "sent"));
      assert.equal(result.outcome, "outbound-not-posted");
      assert.equal(twilio.threadMessages(conversationSid).length, 1);
      assert.deepEqual(twilio.deliveredTwice(), []);
      const mapping = await threads.get(key);
      assert.deepEqual([mapping?.bound, mapping?.boundAt, mapping?.proxyAddress], [true, 0, AcmeNumber]);
    });

    test("a customer bound by autocreation and unknown to the mapping: the holder is adopted and the send listed there", async () => {
      const holder = twilio.autocreated(Customer, AcmeNumber);
      const result = await mirrorEvent(deps, status(await foreignSend(), "sent"));
      assert.deepEqual([result.outcome, result.conversationSid], ["outbound-not-posted", holder]);
      assert.equal(twilio.threadMessages(holder).length, 0);
      assert.equal(summaryOf(holder).length, 1);
      assert.equal(twilio.count("createThread"), 0);
      assert.deepEqual(twilio.deliveredTwice(), []);
    });

    test("a bound thread that has closed since: the binding is gone, so the copy goes into its replacement", async () => {
      const closed = await boundThread();
      const conversation = twilio.conversations.get(closed);
      assert.ok(conversation);
      conversation.state = "closed";
      const sm = await foreignSend("after closing");
      const result = await mirrorEvent(deps, status(sm, "sent"));

      assert.equal(result.outcome, "outbound-mirrored");
      assert.notEqual(result.conversationSid, closed);
      const fresh = twilio.conversations.get(result.conversationSid ?? "");
      assert.equal(fresh?.uniqueName, "t_acme_sms_14155550100_g2");
      assert.deepEqual(
        twilio.threadMessages(fresh?.sid ?? "").map((m) => [m.author, m.body]),
        [["system", "after closing"]],
      );
      assert.deepEqual(summaryOf(closed), []);
      assert.ok(
        twilio.participants.some((p) => p.conversationSid === fresh?.sid && p.address === Customer),
        "bound after the copy, so their reply lands there",
      );
      assert.deepEqual(twilio.deliveredTwice(), []);
    });

    test("attributes that are not a JSON object are left alone; the status stays in the ledger", async () => {
      const conversationSid = await boundThread();
      const conversation = twilio.conversations.get(conversationSid);
      assert.ok(conversation);
      conversation.attributes = '"flex owns this"';
      const sm = await foreignSend();
      assert.equal((await mirrorEvent(deps, status(sm, "sent"))).outcome, "outbound-not-posted");
      assert.equal(conversation.attributes, '"flex owns this"');
      assert.equal((await ledger.get(sm))?.status, "sent");
      assert.equal(twilio.count("postMessage"), 0);
    });
  });

  test("unbound threads keep the copy: posted as a system message, statuses forward only", async () => {
    settings.acme = { ...DefaultMirrorSettings, bindCustomer: false };
    const conversationSid = (await mirrorEvent(deps, inbound({ Body: "hi" }))).conversationSid ?? "";
    const sm = (await twilio.sendMessage({ to: Customer, from: AcmeNumber, body: "answer" })).sid;
    assert.equal((await mirrorEvent(deps, status(sm, "delivered"))).outcome, "outbound-mirrored");
    await mirrorEvent(deps, status(sm, "sent"));
    const copy = twilio.threadMessages(conversationSid)[1];
    assert.deepEqual([copy?.author, copy?.body, copy?.attributes.status], ["system", "answer", "delivered"]);
    assert.deepEqual(summaryOf(conversationSid), []);
    assert.deepEqual(twilio.deliveredTwice(), []);
  });
});

// ---- Conversations events → registry --------------------------------------------------------------

describe("Conversations events", () => {
  const conversationSid = `CH${"d".repeat(32)}`;

  test("loop guard: our own messages and system messages are not new work", async () => {
    const ours = await mirrorEvent(
      deps,
      conversationsEvent("onMessageAdded", {
        ConversationSid: conversationSid,
        MessageSid: sid("IM"),
        Author: Customer,
        Attributes: JSON.stringify({ mirroredBy: MirrorMarker, messagingMessageSid: "SM1" }),
        DateCreated: "2026-06-01T12:00:00Z",
      }),
    );
    const system = await mirrorEvent(
      deps,
      conversationsEvent("onMessageAdded", {
        ConversationSid: conversationSid,
        MessageSid: sid("IM"),
        Author: "system",
      }),
    );
    const customer = await mirrorEvent(
      deps,
      conversationsEvent("onMessageAdded", {
        ConversationSid: conversationSid,
        MessageSid: sid("IM"),
        Author: Customer,
        Attributes: "{}",
      }),
    );
    assert.deepEqual(
      [ours.outcome, system.outcome, customer.outcome],
      ["own-message", "own-message", "registry-updated"],
    );
    assert.equal(twilio.calls.length, 0, "no Twilio call for any of them");
  });

  test("messages, participants and new conversations touch the registry at event time", async () => {
    await mirrorEvent(
      deps,
      conversationsEvent("onConversationAdded", {
        ConversationSid: conversationSid,
        DateCreated: "2026-06-01T10:00:00Z",
        Attributes: JSON.stringify({ tenantId: "globex" }),
      }),
    );
    await mirrorEvent(
      deps,
      conversationsEvent("onParticipantAdded", {
        ConversationSid: conversationSid,
        ParticipantSid: sid("MB"),
        DateCreated: "2026-06-01T11:00:00Z",
      }),
    );
    const row = registry.rows.get(conversationSid);
    assert.equal(row?.tenantId, "globex");
    assert.equal(row?.lastActivityAt, Date.parse("2026-06-01T11:00:00Z"));
  });

  test("state changes are recorded at StateUpdated time; removal marks the row deleted", async () => {
    await mirrorEvent(
      deps,
      conversationsEvent("onConversationStateUpdated", {
        ConversationSid: conversationSid,
        StateFrom: "inactive",
        StateTo: "closed",
        StateUpdated: "2026-06-01T11:30:00Z",
        Reason: "TIMER",
        MessagingServiceSid: GlobexService,
      }),
    );
    assert.deepEqual(registry.rows.get(conversationSid), {
      tenantId: "globex",
      state: "closed",
      stateAt: Date.parse("2026-06-01T11:30:00Z"),
      lastActivityAt: Date.parse("2026-06-01T11:30:00Z"),
      outcome: "timer",
    });
    await mirrorEvent(
      deps,
      conversationsEvent("onConversationRemoved", {
        ConversationSid: conversationSid,
        DateRemoved: "2026-06-01T12:00:00Z",
      }),
    );
    assert.equal(registry.rows.get(conversationSid)?.state, "deleted");
  });
});

// ---- Batch ------------------------------------------------------------------------------------------

describe("batch processing", () => {
  test("a failing record fails its group's later records only; other customers carry on", async () => {
    const record = (envelope: Envelope, group: string) => ({
      messageId: envelope.eventId,
      body: JSON.stringify(envelope),
      attributes: { MessageGroupId: group, ApproximateReceiveCount: "1" },
    });
    const bad = inbound({ From: "+14155550199" });
    const afterBad = inbound({ From: "+14155550199" });
    const good = inbound();
    twilio.faults.push({
      op: "createThread",
      error: new TwilioApiError("Authenticate", { status: 401, code: 20003 }),
      afterEffect: false,
    });
    const batch = await processFifoBatch(
      [
        record(bad, "addr:+14155550199"),
        record(good, `addr:${Customer}`),
        record(afterBad, "addr:+14155550199"),
      ],
      async (envelope) => {
        await mirrorEvent(deps, envelope);
      },
    );
    assert.deepEqual(
      batch.batchItemFailures.map((f) => f.itemIdentifier),
      [bad.eventId, afterBad.eventId],
    );
    assert.equal(twilio.messages.length, 1);
    assert.equal(twilio.messages[0]?.attributes.messagingMessageSid, good.params.MessageSid);
  });
});

// ---- Configuration ----------------------------------------------------------------------------------

describe("mirror configuration", () => {
  const env = (tenantConfig: unknown) => ({
    CONVERSATIONS_TABLE_NAME: "conversations",
    TWILIO_ACCOUNT_SID: `AC${"1".repeat(32)}`,
    TWILIO_AUTH_TOKEN: "token",
    TENANT_CONFIG: JSON.stringify(tenantConfig),
  });

  test("per-tenant sections, defaults for the rest", () => {
    const config = parseMirrorConfig(
      env({
        senders: { [AcmeNumber]: "acme" },
        tenants: {
          acme: {
            mirror: {
              timers: { inactive: "PT30M", closed: null },
              bindCustomer: false,
              businessAuthor: "acme-support",
            },
          },
          quiet: { mirror: { timers: null, messagingServiceSid: `MG${"b".repeat(32)}` } },
        },
      }),
    );
    assert.equal(config.conversationsTableName, "conversations");
    assert.deepEqual(config.settingsFor("acme"), {
      timers: { inactive: "PT30M", closed: undefined },
      messagingServiceSid: undefined,
      bindCustomer: false,
      businessAuthor: "acme-support",
    });
    assert.equal(config.settingsFor("quiet").businessAuthor, "system");
    assert.deepEqual(config.settingsFor("quiet").timers, { inactive: undefined, closed: undefined });
    assert.equal(config.settingsFor("quiet").messagingServiceSid, `MG${"b".repeat(32)}`);
    assert.deepEqual(config.settingsFor("unknown"), DefaultMirrorSettings);
    assert.deepEqual(DefaultMirrorSettings.timers, { inactive: "PT24H", closed: "P7D" });
  });

  test("mistakes fail the cold start with the field named", () => {
    const cases: [unknown, RegExp][] = [
      [{ timers: { closed: "PT5M" } }, /timers\.closed must be at least 10 minutes/],
      [{ timers: { inactive: "PT30S" } }, /timers\.inactive must be at least 1 minute$/],
      [{ timers: { inactive: "24 hours" } }, /timers\.inactive must be an ISO 8601 duration/],
      [{ messagingServiceSid: "PN123" }, /messagingServiceSid must be a Messaging Service SID/],
      [{ bindCustomer: "yes" }, /bindCustomer must be true or false/],
      [{ businessAuthor: "" }, /businessAuthor must be a non-empty string/],
      [{ businessAuthor: 7 }, /businessAuthor must be a non-empty string/],
      ["on", /mirror must be an object/],
    ];
    for (const [mirror, message] of cases) {
      assert.throws(
        () => parseMirrorConfig(env({ tenants: { acme: { mirror } } })),
        ConfigError,
        String(message),
      );
      assert.throws(() => parseMirrorConfig(env({ tenants: { acme: { mirror } } })), message);
    }
    assert.throws(
      () => parseMirrorConfig({ ...env({}), CONVERSATIONS_TABLE_NAME: "" }),
      /CONVERSATIONS_TABLE_NAME/,
    );
  });

  test("ISO 8601 durations", () => {
    assert.equal(durationMs("P7D"), 7 * 24 * 3600_000);
    assert.equal(durationMs("P1DT2H30M"), (26 * 60 + 30) * 60_000);
    assert.equal(durationMs("PT0S"), 0);
    assert.equal(durationMs("P"), undefined);
    assert.equal(durationMs("PT"), undefined);
    assert.equal(durationMs("7 days"), undefined);
  });
});
