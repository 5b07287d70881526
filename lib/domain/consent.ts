// Consent as a pure state machine: what a queued event means for consent (signal), the per-scope
// suppression state, and the rule that orders changes by event time so replays and out-of-order
// deliveries cannot undo a later decision. The DynamoDB adapter enforces the same rule with one
// conditional write; this module is the reference it is tested against.
import type { Envelope } from "./queue-envelope.ts";

export const Channels = ["sms", "whatsapp"] as const;
export type Channel = (typeof Channels)[number];

/** Who consent is about: one person's address on one channel, under one tenant. */
export type ConsentSubject = {
  readonly tenant: string;
  readonly channel: Channel;
  /** E.164 without the channel prefix ("+14155550100"). */
  readonly address: string;
};

/** Suppression scope covering every sender of the tenant on the channel. */
export const AllSenders = "*";

export type ScopeSetting = "sender" | "all";

/** Our side of the exchange: the number that was texted and, when known, its Messaging Service. */
export type Sender = {
  /** E.164 without the channel prefix. */
  readonly proxy: string | undefined;
  readonly messagingServiceSid: string | undefined;
};

export type ConsentAction = "opt-out" | "opt-in";
export type SuppressionStatus = "opted-out" | "opted-in";

export type ConsentSource =
  | "messaging-inbound"
  | "conversations-message"
  | "status-callback-21610"
  | "conversations-delivery-21610";

/** One consent-changing event, as the state machine sees it. */
export type ConsentChange = {
  readonly action: ConsentAction;
  /** Epoch ms; see `eventTimeOf`. */
  readonly eventAt: number;
  readonly eventId: string;
  readonly keyword: string | undefined;
  readonly source: ConsentSource;
};

/** The current state of one (subject, scope). `version` orders changes; see `consentVersion`. */
export type SuppressionState = {
  readonly scope: string;
  readonly status: SuppressionStatus;
  readonly version: string;
  readonly eventAt: number;
  readonly eventId: string;
  readonly keyword: string | undefined;
  readonly source: ConsentSource;
  /** Status before the event that wrote this state ("none" for the first one): tells a replay whether it changed anything. */
  readonly previousStatus: SuppressionStatus | "none";
};

/** The result of offering a change to the current state. */
export type ConsentDecision =
  /** The change is the newest: it becomes the state. `statusChanged` = the person's status flipped. */
  | { readonly outcome: "applied"; readonly state: SuppressionState; readonly statusChanged: boolean }
  /** The same event already wrote the state (a retry): redo its idempotent effects, same `statusChanged`. */
  | { readonly outcome: "replayed"; readonly state: SuppressionState; readonly statusChanged: boolean }
  /** A later event (or a tie-winner) holds the state: this one changes nothing. */
  | { readonly outcome: "superseded"; readonly state: SuppressionState; readonly statusChanged: false };

export class InvalidConsentEventError extends Error {
  override name = "InvalidConsentEventError";
}

const statusOf = (action: ConsentAction): SuppressionStatus =>
  action === "opt-out" ? "opted-out" : "opted-in";

/**
 * A string whose order is the order in which changes win: event time first (zero-padded so string and
 * numeric order agree), then opt-out over opt-in at the same millisecond (when in doubt, do not contact),
 * then the event id so two different events never compare equal. A replay has exactly the same version.
 */
export const consentVersion = (change: Pick<ConsentChange, "action" | "eventAt" | "eventId">): string =>
  `${Math.max(0, Math.trunc(change.eventAt)).toString().padStart(15, "0")}#${
    change.action === "opt-out" ? "1" : "0"
  }#${change.eventId}`;

export const applyConsentChange = (
  scope: string,
  current: SuppressionState | undefined,
  change: ConsentChange,
): ConsentDecision => {
  const version = consentVersion(change);
  if (current !== undefined && current.eventId === change.eventId) {
    return { outcome: "replayed", state: current, statusChanged: current.previousStatus !== current.status };
  }
  if (current !== undefined && current.version >= version) {
    return { outcome: "superseded", state: current, statusChanged: false };
  }
  const previousStatus = current?.status ?? "none";
  const state: SuppressionState = {
    scope,
    status: statusOf(change.action),
    version,
    eventAt: change.eventAt,
    eventId: change.eventId,
    keyword: change.keyword,
    source: change.source,
    previousStatus,
  };
  return { outcome: "applied", state, statusChanged: previousStatus !== state.status };
};

/** The scope a change is stored under: the sender (Messaging Service if known, else number) or all. */
export const scopeFor = (setting: ScopeSetting, sender: Sender): string => {
  if (setting === "all") return AllSenders;
  const key = sender.messagingServiceSid ?? sender.proxy;
  if (key === undefined) return AllSenders;
  return key;
};

const isMessagingService = (scope: string): boolean => /^MG[0-9a-fA-F]{32}$/.test(scope);

/** The entry's scope surely covers `sender`: all senders, its number or its Messaging Service. */
const covers = (scope: string, sender: Sender): boolean =>
  scope === AllSenders || scope === sender.proxy || scope === sender.messagingServiceSid;

/** The entry's scope could be the part of `sender` the caller does not know (its service, its number). */
const mayCover = (scope: string, sender: Sender): boolean =>
  isMessagingService(scope)
    ? sender.messagingServiceSid === undefined
    : scope !== AllSenders && sender.proxy === undefined;

/**
 * Whether `entries` (all scopes of one subject) suppress contact from `sender`. Among the entries that
 * cover the sender, the newest decides, so an opt-in for this sender after an all-senders opt-out reopens
 * only this sender.
 *
 * `unknownMayApply`: the caller knows only part of the sender (a pre-event hook names our number but not
 * its Messaging Service; a send through a Messaging Service lets Twilio pick the number). An opt-out
 * scoped to a value the unknown part might have then suppresses when it is newer than every entry that
 * surely covers the sender. An opt-in scoped to such a value never counts: it may belong to another
 * service or number, and must not mask an opt-out that surely applies. In doubt, do not contact.
 */
export const suppressionFor = (
  entries: readonly SuppressionState[],
  sender: Sender,
  options: { readonly unknownMayApply?: boolean } = {},
): SuppressionState | undefined => {
  let newest: SuppressionState | undefined;
  let possibleOptOut: SuppressionState | undefined;
  for (const entry of entries) {
    if (covers(entry.scope, sender)) {
      if (newest === undefined || entry.version > newest.version) newest = entry;
    } else if (
      options.unknownMayApply === true &&
      entry.status === "opted-out" &&
      mayCover(entry.scope, sender) &&
      (possibleOptOut === undefined || entry.version > possibleOptOut.version)
    ) {
      possibleOptOut = entry;
    }
  }
  if (newest?.status === "opted-out") return newest;
  if (possibleOptOut !== undefined && (newest === undefined || possibleOptOut.version > newest.version)) {
    return possibleOptOut;
  }
  return undefined;
};

/** Channel and bare address of a Twilio address ("whatsapp:+1…", "+1…"); undefined for other channels. */
export const parseChannelAddress = (
  raw: string | undefined,
): { readonly channel: Channel; readonly address: string } | undefined => {
  if (raw === undefined) return undefined;
  const value = raw.trim();
  if (value.startsWith("whatsapp:")) {
    const address = value.slice("whatsapp:".length);
    return /^\+?\d{5,15}$/.test(address) ? { channel: "whatsapp", address } : undefined;
  }
  if (value.startsWith("sms:")) {
    const address = value.slice("sms:".length);
    return /^\+?\d{3,15}$/.test(address) ? { channel: "sms", address } : undefined;
  }
  // Short codes (3–8 digits) and E.164 numbers are both SMS senders/recipients.
  return /^\+?\d{3,15}$/.test(value) ? { channel: "sms", address: value } : undefined;
};

/** The address in the form Twilio expects for `channel` ("whatsapp:+1…" or "+1…"). */
export const twilioAddress = (channel: Channel, address: string): string =>
  channel === "whatsapp" ? `whatsapp:${address}` : address;

/** Append-only evidence of one consent event, or of an inbound message dropped because of suppression. */
export type ConsentRecord = {
  readonly subject: ConsentSubject;
  readonly action: ConsentAction | "inbound-while-suppressed";
  readonly eventId: string;
  readonly eventAt: number;
  /** When compliance processed the event (epoch ms). */
  readonly recordedAt: number;
  readonly source: ConsentSource;
  readonly keyword: string | undefined;
  readonly decidedBy: "twilio-opt-out-type" | "keyword-list" | "error-21610" | undefined;
  readonly scope: string;
  readonly sender: Sender;
  readonly messageSid: string | undefined;
  readonly conversationSid: string | undefined;
  /** Epoch seconds after which the record may expire (TTL), or undefined to keep it forever. */
  readonly expiresAt: number | undefined;
};

// ---- Reading queued events ---------------------------------------------------------------------------

/** An inbound message from a person (Messaging webhook or Conversations onMessageAdded). */
export type InboundSignal = {
  readonly kind: "inbound";
  readonly source: "messaging-inbound" | "conversations-message";
  readonly eventId: string;
  readonly eventAt: number;
  readonly channel: Channel;
  readonly address: string;
  readonly sender: Sender;
  readonly body: string | undefined;
  readonly optOutType: string | undefined;
  readonly messageSid: string | undefined;
  readonly conversationSid: string | undefined;
  readonly participantSid: string | undefined;
};

/** Twilio reported 21610 for a message to a person: they replied STOP to that sender. */
export type OptedOutFailureSignal = {
  readonly kind: "opted-out-failure";
  readonly source: "status-callback-21610" | "conversations-delivery-21610";
  readonly eventId: string;
  readonly eventAt: number;
  /** Known for status callbacks; Conversations delivery receipts name only the participant. */
  readonly recipient: { readonly channel: Channel; readonly address: string } | undefined;
  readonly sender: Sender;
  readonly messageSid: string | undefined;
  readonly conversationSid: string | undefined;
  readonly participantSid: string | undefined;
};

/** Something compliance does not govern (another channel, a status that is not 21610). */
export type PassSignal = { readonly kind: "pass"; readonly reason: string };

export type ConsentSignal = InboundSignal | OptedOutFailureSignal | PassSignal;

const OptedOutErrorCode = "21610";

const param = (envelope: Envelope, name: string): string | undefined => {
  const value = envelope.params[name];
  const first = typeof value === "string" ? value : value?.[0];
  return first === undefined || first === "" ? undefined : first;
};

/**
 * Event time: Twilio's `DateCreated` when the event carries one (Conversations events: the moment
 * Twilio created the message or receipt, unaffected by webhook retries or queue delays), else the
 * epoch ms at which intake received the webhook (Messaging webhooks carry no timestamp).
 */
export const eventTimeOf = (envelope: Envelope): number => {
  const dateCreated = envelope.kind.startsWith("conversations.") ? param(envelope, "DateCreated") : undefined;
  if (dateCreated !== undefined) {
    const parsed = Date.parse(dateCreated);
    if (Number.isFinite(parsed)) return parsed;
  }
  return envelope.receivedAt;
};

const senderOf = (proxy: string | undefined, messagingServiceSid: string | undefined): Sender => ({
  proxy: parseChannelAddress(proxy)?.address,
  messagingServiceSid,
});

export const readConsentSignal = (envelope: Envelope): ConsentSignal => {
  const eventAt = eventTimeOf(envelope);
  switch (envelope.kind) {
    case "messaging.inbound": {
      const from = param(envelope, "From");
      if (from === undefined) throw new InvalidConsentEventError("messaging.inbound without From");
      const person = parseChannelAddress(from);
      if (person === undefined) return { kind: "pass", reason: "channel not governed by compliance" };
      return {
        kind: "inbound",
        source: "messaging-inbound",
        eventId: envelope.eventId,
        eventAt,
        ...person,
        sender: senderOf(param(envelope, "To"), param(envelope, "MessagingServiceSid")),
        body: param(envelope, "Body"),
        optOutType: param(envelope, "OptOutType"),
        messageSid: param(envelope, "MessageSid"),
        conversationSid: undefined,
        participantSid: undefined,
      };
    }
    case "messaging.status": {
      if (param(envelope, "ErrorCode") !== OptedOutErrorCode) return { kind: "pass", reason: "not a 21610" };
      const recipient = parseChannelAddress(param(envelope, "To"));
      if (recipient === undefined) throw new InvalidConsentEventError("21610 status callback without To");
      return {
        kind: "opted-out-failure",
        source: "status-callback-21610",
        eventId: envelope.eventId,
        eventAt,
        recipient,
        sender: senderOf(param(envelope, "From"), param(envelope, "MessagingServiceSid")),
        messageSid: param(envelope, "MessageSid"),
        conversationSid: undefined,
        participantSid: undefined,
      };
    }
    case "conversations.onMessageAdded": {
      const person = parseChannelAddress(param(envelope, "Author"));
      if (person === undefined) return { kind: "pass", reason: "author is not an SMS/WhatsApp address" };
      const conversationSid = param(envelope, "ConversationSid");
      if (conversationSid === undefined) {
        throw new InvalidConsentEventError("onMessageAdded without ConversationSid");
      }
      return {
        kind: "inbound",
        source: "conversations-message",
        eventId: envelope.eventId,
        eventAt,
        ...person,
        sender: senderOf(undefined, param(envelope, "MessagingServiceSid")),
        body: param(envelope, "Body"),
        optOutType: undefined,
        messageSid: param(envelope, "MessageSid"),
        conversationSid,
        participantSid: param(envelope, "ParticipantSid"),
      };
    }
    case "conversations.onDeliveryUpdated": {
      if (param(envelope, "ErrorCode") !== OptedOutErrorCode) return { kind: "pass", reason: "not a 21610" };
      const conversationSid = param(envelope, "ConversationSid");
      const participantSid = param(envelope, "ParticipantSid");
      if (conversationSid === undefined || participantSid === undefined) {
        throw new InvalidConsentEventError("onDeliveryUpdated 21610 without ConversationSid/ParticipantSid");
      }
      return {
        kind: "opted-out-failure",
        source: "conversations-delivery-21610",
        eventId: envelope.eventId,
        eventAt,
        recipient: undefined,
        sender: senderOf(undefined, param(envelope, "MessagingServiceSid")),
        messageSid: param(envelope, "MessageSid"),
        conversationSid,
        participantSid,
      };
    }
    default:
      return { kind: "pass", reason: `${envelope.kind} carries no consent signal` };
  }
};
