// The emulator's in-memory Twilio account: conversations, participants and their number-pair bindings,
// messages, webhook configuration, outbound SMS/WhatsApp messages and phone numbers. Every rule that
// produces a Twilio error code (50353, 50416, 50433, 50437, 50377, …) lives here; the HTTP layer only
// parses parameters in and renders records out. Time comes from the injected clock.
import { randomBytes } from "node:crypto";
import { twilioErrors } from "./errors.ts";

export const SidPrefixes = {
  account: "AC",
  chatService: "IS",
  messagingService: "MG",
  conversation: "CH",
  participant: "MB",
  message: "IM",
  user: "US",
  role: "RL",
  smsMessage: "SM",
  phoneNumber: "PN",
  media: "ME",
} as const;

export type SidPrefix = (typeof SidPrefixes)[keyof typeof SidPrefixes];

export const newSid = (prefix: SidPrefix): string => `${prefix}${randomBytes(16).toString("hex")}`;

export const ConversationStates = ["initializing", "inactive", "active", "closed"] as const;
export type ConversationState = (typeof ConversationStates)[number];

const CONVERSATION_SID = /^CH[0-9a-fA-F]{32}$/;
const MINUTE_MS = 60_000;

export interface ConversationTimers {
  /** Duration after the last activity before an active conversation turns inactive. */
  readonly inactiveAfterMs: number | null;
  /** Duration after the last activity before the conversation closes. */
  readonly closedAfterMs: number | null;
}

export interface ConversationRecord {
  readonly sid: string;
  readonly chatServiceSid: string;
  messagingServiceSid: string;
  friendlyName: string | null;
  uniqueName: string | null;
  attributes: string;
  state: ConversationState;
  dateCreated: number;
  dateUpdated: number;
  timers: ConversationTimers;
  /** Timers count from here: creation, a timer change, a message, or reactivation. */
  lastActivity: number;
  emailBinding: { address: string; name: string | null } | null;
  nextMessageIndex: number;
}

export type MessagingChannel = "sms" | "whatsapp" | "messenger" | "gbm" | "rcs";

export interface MessagingBinding {
  readonly type: MessagingChannel;
  readonly address: string | null;
  readonly proxyAddress: string | null;
  readonly projectedAddress: string | null;
}

export interface ParticipantRecord {
  readonly sid: string;
  readonly conversationSid: string;
  identity: string | null;
  readonly userSid: string | null;
  attributes: string;
  binding: MessagingBinding | null;
  roleSid: string;
  dateCreated: number;
  dateUpdated: number;
  lastReadMessageIndex: number | null;
  lastReadTimestamp: string | null;
}

export interface MessageRecord {
  readonly sid: string;
  readonly conversationSid: string;
  readonly index: number;
  author: string;
  body: string | null;
  readonly mediaSids: readonly string[];
  attributes: string;
  readonly participantSid: string | null;
  dateCreated: number;
  dateUpdated: number;
  readonly contentSid: string | null;
  readonly contentVariables: string | null;
  subject: string | null;
}

export interface WebhookConfiguration {
  method: "GET" | "POST";
  filters: string[];
  preWebhookUrl: string | null;
  postWebhookUrl: string | null;
  target: "webhook" | "flex";
}

export interface ServiceWebhookConfiguration {
  method: "GET" | "POST";
  filters: string[];
  preWebhookUrl: string | null;
  postWebhookUrl: string | null;
}

export interface OutboundMessageRecord {
  readonly sid: string;
  readonly to: string;
  readonly from: string | null;
  readonly messagingServiceSid: string | null;
  readonly body: string | null;
  readonly contentSid: string | null;
  readonly contentVariables: string | null;
  readonly statusCallback: string | null;
  readonly mediaUrls: readonly string[];
  readonly status: "queued" | "accepted";
  readonly dateCreated: number;
  readonly dateUpdated: number;
}

export interface PhoneNumberRecord {
  readonly sid: string;
  readonly phoneNumber: string;
  friendlyName: string;
  smsUrl: string | null;
  smsMethod: "GET" | "POST";
  smsFallbackUrl: string | null;
  smsFallbackMethod: "GET" | "POST";
  statusCallback: string | null;
  statusCallbackMethod: "GET" | "POST";
  voiceUrl: string | null;
  voiceMethod: "GET" | "POST";
  voiceFallbackUrl: string | null;
  voiceFallbackMethod: "GET" | "POST";
  readonly dateCreated: number;
  dateUpdated: number;
}

export interface AccountSeed {
  readonly accountSid: string;
  readonly phoneNumbers: readonly string[];
  readonly now: () => number;
}

export interface ConversationInput {
  readonly friendlyName?: string;
  readonly uniqueName?: string;
  readonly attributes?: string;
  readonly messagingServiceSid?: string;
  readonly state?: ConversationState;
  readonly timersInactive?: string;
  readonly timersClosed?: string;
  readonly dateCreated?: string;
  readonly dateUpdated?: string;
  readonly emailAddress?: string;
  readonly emailName?: string;
}

export interface ParticipantInput {
  readonly identity?: string;
  readonly address?: string;
  readonly proxyAddress?: string;
  readonly projectedAddress?: string;
  readonly attributes?: string;
  readonly roleSid?: string;
  readonly dateCreated?: string;
  readonly dateUpdated?: string;
}

export interface ParticipantUpdate {
  readonly attributes?: string;
  readonly roleSid?: string;
  readonly identity?: string;
  readonly proxyAddress?: string;
  readonly projectedAddress?: string;
  readonly lastReadMessageIndex?: number | null;
  readonly lastReadTimestamp?: string;
  readonly dateCreated?: string;
  readonly dateUpdated?: string;
}

export interface MessageInput {
  readonly author?: string;
  readonly body?: string;
  readonly attributes?: string;
  readonly mediaSid?: string;
  readonly contentSid?: string;
  readonly contentVariables?: string;
  readonly subject?: string;
  readonly dateCreated?: string;
  readonly dateUpdated?: string;
}

export interface MessageUpdate {
  readonly author?: string;
  readonly body?: string;
  readonly attributes?: string;
  readonly subject?: string;
  readonly dateCreated?: string;
  readonly dateUpdated?: string;
}

export interface OutboundMessageInput {
  readonly to: string;
  readonly from?: string;
  readonly messagingServiceSid?: string;
  readonly body?: string;
  readonly contentSid?: string;
  readonly contentVariables?: string;
  readonly statusCallback?: string;
  readonly mediaUrls: readonly string[];
}

export interface PhoneNumberUpdate {
  readonly friendlyName?: string;
  readonly smsUrl?: string;
  readonly smsMethod?: "GET" | "POST";
  readonly smsFallbackUrl?: string;
  readonly smsFallbackMethod?: "GET" | "POST";
  readonly statusCallback?: string;
  readonly statusCallbackMethod?: "GET" | "POST";
  readonly voiceUrl?: string;
  readonly voiceMethod?: "GET" | "POST";
  readonly voiceFallbackUrl?: string;
  readonly voiceFallbackMethod?: "GET" | "POST";
}

export class TwilioAccountState {
  readonly accountSid: string;
  readonly chatServiceSid = newSid(SidPrefixes.chatService);
  readonly messagingServiceSid = newSid(SidPrefixes.messagingService);
  readonly participantRoleSid = newSid(SidPrefixes.role);
  readonly now: () => number;
  readonly #seedNumbers: readonly string[];

  conversations = new Map<string, ConversationRecord>();
  participants = new Map<string, ParticipantRecord>();
  messages = new Map<string, MessageRecord>();
  outboundMessages = new Map<string, OutboundMessageRecord>();
  phoneNumbers = new Map<string, PhoneNumberRecord>();
  users = new Map<string, string>();
  optedOut = new Set<string>();
  webhookConfiguration: WebhookConfiguration = defaultWebhookConfiguration();
  serviceWebhookConfiguration: ServiceWebhookConfiguration = defaultServiceWebhookConfiguration();

  constructor(seed: AccountSeed) {
    this.accountSid = seed.accountSid;
    this.now = seed.now;
    this.#seedNumbers = seed.phoneNumbers;
    this.reset();
  }

  reset(): void {
    this.conversations = new Map();
    this.participants = new Map();
    this.messages = new Map();
    this.outboundMessages = new Map();
    this.users = new Map();
    this.optedOut = new Set();
    this.webhookConfiguration = defaultWebhookConfiguration();
    this.serviceWebhookConfiguration = defaultServiceWebhookConfiguration();
    this.phoneNumbers = new Map();
    const now = this.now();
    for (const phoneNumber of this.#seedNumbers) {
      const sid = newSid(SidPrefixes.phoneNumber);
      this.phoneNumbers.set(sid, defaultPhoneNumber(sid, phoneNumber, now));
    }
  }

  /**
   * Applies conversation timers lazily: Twilio moves conversations on its own clock, the emulator does it
   * whenever someone looks. Closing releases the conversation's bindings because binding checks skip
   * closed conversations.
   */
  applyTimers(): void {
    const now = this.now();
    for (const conversation of this.conversations.values()) {
      const { inactiveAfterMs, closedAfterMs } = conversation.timers;
      if (conversation.state === "closed") continue;
      const closesAt = closedAfterMs === null ? null : conversation.lastActivity + closedAfterMs;
      const inactiveAt = inactiveAfterMs === null ? null : conversation.lastActivity + inactiveAfterMs;
      if (closesAt !== null && now >= closesAt) {
        conversation.state = "closed";
        conversation.dateUpdated = closesAt;
      } else if (conversation.state === "active" && inactiveAt !== null && now >= inactiveAt) {
        conversation.state = "inactive";
        conversation.dateUpdated = inactiveAt;
      }
    }
  }

  // ---- Conversations -----------------------------------------------------------------------------

  /** By SID or, as Twilio allows on `/v1/Conversations/{Sid}`, by unique name. */
  findConversation(sidOrUniqueName: string): ConversationRecord | undefined {
    if (CONVERSATION_SID.test(sidOrUniqueName)) return this.conversations.get(sidOrUniqueName);
    for (const conversation of this.conversations.values()) {
      if (conversation.uniqueName === sidOrUniqueName) return conversation;
    }
    return undefined;
  }

  /** Child resources (`/Conversations/{ConversationSid}/…`) are addressed by SID only. */
  conversationBySid(sid: string, path: string): ConversationRecord {
    const conversation = this.conversations.get(sid);
    if (conversation === undefined) throw twilioErrors.notFound(path);
    return conversation;
  }

  createConversation(input: ConversationInput): ConversationRecord {
    const now = this.now();
    if (input.uniqueName !== undefined) this.#checkUniqueName(input.uniqueName, undefined);
    if (input.state === "closed") throw twilioErrors.initialStateClosed();
    if (input.state === "initializing") {
      throw twilioErrors.badRequest("State 'initializing' is set by Twilio only, never by a create request");
    }
    if (
      input.state === undefined &&
      (input.timersInactive !== undefined || input.timersClosed !== undefined)
    ) {
      throw twilioErrors.timerWithoutState();
    }
    const attributes = checkAttributes(input.attributes ?? "{}");
    const dateCreated = parseDate(input.dateCreated, "DateCreated") ?? now;
    const conversation: ConversationRecord = {
      sid: newSid(SidPrefixes.conversation),
      chatServiceSid: this.chatServiceSid,
      messagingServiceSid: input.messagingServiceSid ?? this.messagingServiceSid,
      friendlyName: input.friendlyName ?? null,
      uniqueName: input.uniqueName ?? null,
      attributes,
      state: input.state ?? "active",
      dateCreated,
      dateUpdated: parseDate(input.dateUpdated, "DateUpdated") ?? dateCreated,
      timers: {
        inactiveAfterMs: parseTimer(input.timersInactive, "Timers.Inactive"),
        closedAfterMs: parseTimer(input.timersClosed, "Timers.Closed"),
      },
      lastActivity: now,
      emailBinding:
        input.emailAddress === undefined
          ? null
          : { address: input.emailAddress, name: input.emailName ?? null },
      nextMessageIndex: 0,
    };
    this.conversations.set(conversation.sid, conversation);
    return conversation;
  }

  updateConversation(conversation: ConversationRecord, input: ConversationInput): ConversationRecord {
    if (conversation.state === "closed") throw twilioErrors.conversationClosed(conversation.sid);
    if (conversation.state === "initializing") throw twilioErrors.conversationInitializing(conversation.sid);
    if (input.state === "initializing") {
      throw twilioErrors.badRequest("State 'initializing' is set by Twilio only, never by an update request");
    }
    if (input.uniqueName !== undefined) this.#checkUniqueName(input.uniqueName, conversation.sid);
    const now = this.now();
    const timersInactive = parseTimer(input.timersInactive, "Timers.Inactive");
    const timersClosed = parseTimer(input.timersClosed, "Timers.Closed");
    const attributes = input.attributes === undefined ? undefined : checkAttributes(input.attributes);
    const dateCreated = parseDate(input.dateCreated, "DateCreated");
    const dateUpdated = parseDate(input.dateUpdated, "DateUpdated");
    if (input.friendlyName !== undefined) conversation.friendlyName = input.friendlyName;
    if (input.uniqueName !== undefined) conversation.uniqueName = input.uniqueName;
    if (attributes !== undefined) conversation.attributes = attributes;
    if (input.messagingServiceSid !== undefined) conversation.messagingServiceSid = input.messagingServiceSid;
    if (input.emailAddress !== undefined) {
      conversation.emailBinding = { address: input.emailAddress, name: input.emailName ?? null };
    }
    if (input.timersInactive !== undefined || input.timersClosed !== undefined) {
      conversation.timers = {
        inactiveAfterMs:
          input.timersInactive === undefined ? conversation.timers.inactiveAfterMs : timersInactive,
        closedAfterMs: input.timersClosed === undefined ? conversation.timers.closedAfterMs : timersClosed,
      };
      conversation.lastActivity = now;
    }
    if (input.state !== undefined && input.state !== conversation.state) {
      if (input.state === "active") conversation.lastActivity = now;
      conversation.state = input.state;
    }
    if (dateCreated !== undefined) conversation.dateCreated = dateCreated;
    conversation.dateUpdated = dateUpdated ?? now;
    return conversation;
  }

  deleteConversation(conversation: ConversationRecord): void {
    this.conversations.delete(conversation.sid);
    for (const participant of this.participantsOf(conversation.sid))
      this.participants.delete(participant.sid);
    for (const message of this.messagesOf(conversation.sid)) this.messages.delete(message.sid);
  }

  #checkUniqueName(uniqueName: string, ownSid: string | undefined): void {
    if (CONVERSATION_SID.test(uniqueName)) throw twilioErrors.uniqueNameLooksLikeSid(uniqueName);
    const holder = this.findConversation(uniqueName);
    if (holder !== undefined && holder.sid !== ownSid) throw twilioErrors.uniqueNameExists(uniqueName);
  }

  // ---- Participants ------------------------------------------------------------------------------

  participantsOf(conversationSid: string): ParticipantRecord[] {
    return [...this.participants.values()].filter((p) => p.conversationSid === conversationSid);
  }

  /** `{Sid}` of a participant may be its SID or, as Twilio allows, its chat identity. */
  findParticipant(conversationSid: string, sidOrIdentity: string): ParticipantRecord | undefined {
    return this.participantsOf(conversationSid).find(
      (participant) => participant.sid === sidOrIdentity || participant.identity === sidOrIdentity,
    );
  }

  createParticipant(conversation: ConversationRecord, input: ParticipantInput): ParticipantRecord {
    this.#checkWritable(conversation);
    const now = this.now();
    const binding = bindingFrom(input);
    if (input.identity === undefined && binding === null) {
      throw twilioErrors.badRequest(
        "A participant needs 'Identity' (chat) or 'MessagingBinding.Address' (SMS/WhatsApp)",
      );
    }
    if (input.identity !== undefined && binding?.address != null) {
      throw twilioErrors.badRequest("'Identity' and 'MessagingBinding.Address' are mutually exclusive");
    }
    const siblings = this.participantsOf(conversation.sid);
    if (input.identity !== undefined && siblings.some((p) => p.identity === input.identity)) {
      throw twilioErrors.participantExists(input.identity);
    }
    if (binding?.address != null) {
      const samePair = (p: ParticipantRecord) =>
        p.binding?.address === binding.address && p.binding.proxyAddress === binding.proxyAddress;
      if (siblings.some(samePair)) throw twilioErrors.groupParticipantExists();
      if (binding.proxyAddress !== null) {
        const holder = [...this.participants.values()].find(
          (p) => samePair(p) && this.conversations.get(p.conversationSid)?.state !== "closed",
        );
        if (holder !== undefined) throw twilioErrors.bindingInUse(holder.conversationSid);
      }
    }
    const dateCreated = parseDate(input.dateCreated, "DateCreated") ?? now;
    const participant: ParticipantRecord = {
      sid: newSid(SidPrefixes.participant),
      conversationSid: conversation.sid,
      identity: input.identity ?? null,
      userSid: input.identity === undefined ? null : this.#userSid(input.identity),
      attributes: checkAttributes(input.attributes ?? "{}"),
      binding,
      roleSid: input.roleSid ?? this.participantRoleSid,
      dateCreated,
      dateUpdated: parseDate(input.dateUpdated, "DateUpdated") ?? dateCreated,
      lastReadMessageIndex: null,
      lastReadTimestamp: null,
    };
    this.participants.set(participant.sid, participant);
    return participant;
  }

  updateParticipant(
    conversation: ConversationRecord,
    participant: ParticipantRecord,
    input: ParticipantUpdate,
  ): ParticipantRecord {
    this.#checkWritable(conversation);
    const attributes = input.attributes === undefined ? undefined : checkAttributes(input.attributes);
    const dateCreated = parseDate(input.dateCreated, "DateCreated");
    const dateUpdated = parseDate(input.dateUpdated, "DateUpdated");
    if (attributes !== undefined) participant.attributes = attributes;
    if (input.roleSid !== undefined) participant.roleSid = input.roleSid;
    if (input.identity !== undefined) participant.identity = input.identity;
    if (input.lastReadMessageIndex !== undefined) {
      participant.lastReadMessageIndex = input.lastReadMessageIndex;
    }
    if (input.lastReadTimestamp !== undefined) participant.lastReadTimestamp = input.lastReadTimestamp;
    if (
      participant.binding !== null &&
      (input.proxyAddress !== undefined || input.projectedAddress !== undefined)
    ) {
      // Twilio documents the literal string 'null' as "remove this address".
      const resolve = (value: string | undefined, current: string | null) =>
        value === undefined ? current : value === "null" ? null : value;
      participant.binding = {
        ...participant.binding,
        proxyAddress: resolve(input.proxyAddress, participant.binding.proxyAddress),
        projectedAddress: resolve(input.projectedAddress, participant.binding.projectedAddress),
      };
    }
    if (dateCreated !== undefined) participant.dateCreated = dateCreated;
    participant.dateUpdated = dateUpdated ?? this.now();
    return participant;
  }

  deleteParticipant(participant: ParticipantRecord): void {
    this.participants.delete(participant.sid);
  }

  /** Every participant, in any conversation, with this chat identity or messaging address. */
  participantsMatching(filter: { identity?: string; address?: string }): ParticipantRecord[] {
    return [...this.participants.values()].filter(
      (participant) =>
        (filter.identity !== undefined && participant.identity === filter.identity) ||
        (filter.address !== undefined && participant.binding?.address === filter.address),
    );
  }

  #userSid(identity: string): string {
    let sid = this.users.get(identity);
    if (sid === undefined) {
      sid = newSid(SidPrefixes.user);
      this.users.set(identity, sid);
    }
    return sid;
  }

  #checkWritable(conversation: ConversationRecord): void {
    if (conversation.state === "closed") throw twilioErrors.conversationClosed(conversation.sid);
    if (conversation.state === "initializing") throw twilioErrors.conversationInitializing(conversation.sid);
  }

  // ---- Messages ----------------------------------------------------------------------------------

  messagesOf(conversationSid: string): MessageRecord[] {
    return [...this.messages.values()]
      .filter((message) => message.conversationSid === conversationSid)
      .sort((a, b) => a.index - b.index);
  }

  findMessage(conversationSid: string, sid: string): MessageRecord | undefined {
    const message = this.messages.get(sid);
    return message?.conversationSid === conversationSid ? message : undefined;
  }

  createMessage(conversation: ConversationRecord, input: MessageInput): MessageRecord {
    this.#checkWritable(conversation);
    const now = this.now();
    const author = input.author ?? "system";
    const participant = this.participantsOf(conversation.sid).find(
      (p) => p.identity === author || p.binding?.address === author,
    );
    const dateCreated = parseDate(input.dateCreated, "DateCreated") ?? now;
    const message: MessageRecord = {
      sid: newSid(SidPrefixes.message),
      conversationSid: conversation.sid,
      index: conversation.nextMessageIndex,
      author,
      body: input.body ?? null,
      mediaSids: input.mediaSid === undefined ? [] : [input.mediaSid],
      attributes: checkAttributes(input.attributes ?? "{}"),
      participantSid: participant?.sid ?? null,
      dateCreated,
      dateUpdated: parseDate(input.dateUpdated, "DateUpdated") ?? dateCreated,
      contentSid: input.contentSid ?? null,
      contentVariables: input.contentVariables ?? null,
      subject: input.subject ?? null,
    };
    conversation.nextMessageIndex += 1;
    // A message is activity: it reactivates an inactive conversation and restarts its timers.
    conversation.lastActivity = now;
    if (conversation.state === "inactive") {
      conversation.state = "active";
      conversation.dateUpdated = now;
    }
    this.messages.set(message.sid, message);
    return message;
  }

  updateMessage(
    conversation: ConversationRecord,
    message: MessageRecord,
    input: MessageUpdate,
  ): MessageRecord {
    this.#checkWritable(conversation);
    const attributes = input.attributes === undefined ? undefined : checkAttributes(input.attributes);
    const dateCreated = parseDate(input.dateCreated, "DateCreated");
    const dateUpdated = parseDate(input.dateUpdated, "DateUpdated");
    if (input.author !== undefined) message.author = input.author;
    if (input.body !== undefined) message.body = input.body;
    if (attributes !== undefined) message.attributes = attributes;
    if (input.subject !== undefined) message.subject = input.subject;
    if (dateCreated !== undefined) message.dateCreated = dateCreated;
    message.dateUpdated = dateUpdated ?? this.now();
    return message;
  }

  deleteMessage(message: MessageRecord): void {
    this.messages.delete(message.sid);
  }

  // ---- Programmable Messaging (2010-04-01) ------------------------------------------------------

  sendMessage(input: OutboundMessageInput): OutboundMessageRecord {
    const to = input.to.trim();
    if (to === "") throw twilioErrors.toRequired();
    if (!/^(?:[a-z]+:)?\+[1-9]\d{6,14}$/.test(to)) throw twilioErrors.invalidTo(to);
    if (input.from === undefined && input.messagingServiceSid === undefined) {
      throw twilioErrors.fromRequired();
    }
    if (input.body === undefined && input.contentSid === undefined && input.mediaUrls.length === 0) {
      throw twilioErrors.bodyRequired();
    }
    // Twilio enforces STOP for SMS only; WhatsApp opt-outs are the sender's job.
    if (!to.startsWith("whatsapp:") && this.optedOut.has(to)) throw twilioErrors.optedOut();
    const now = this.now();
    const record: OutboundMessageRecord = {
      sid: newSid(SidPrefixes.smsMessage),
      to,
      from: input.from ?? null,
      messagingServiceSid: input.messagingServiceSid ?? null,
      body: input.body ?? null,
      contentSid: input.contentSid ?? null,
      contentVariables: input.contentVariables ?? null,
      statusCallback: input.statusCallback ?? null,
      mediaUrls: input.mediaUrls,
      // Sent through a Messaging Service without a From, Twilio answers "accepted" (sender chosen later).
      status: input.from === undefined ? "accepted" : "queued",
      dateCreated: now,
      dateUpdated: now,
    };
    this.outboundMessages.set(record.sid, record);
    return record;
  }

  updatePhoneNumber(phoneNumber: PhoneNumberRecord, input: PhoneNumberUpdate): PhoneNumberRecord {
    const fields = [
      "friendlyName",
      "smsUrl",
      "smsMethod",
      "smsFallbackUrl",
      "smsFallbackMethod",
      "statusCallback",
      "statusCallbackMethod",
      "voiceUrl",
      "voiceMethod",
      "voiceFallbackUrl",
      "voiceFallbackMethod",
    ] as const;
    for (const field of fields) {
      const value = input[field];
      if (value !== undefined) Object.assign(phoneNumber, { [field]: value });
    }
    phoneNumber.dateUpdated = this.now();
    return phoneNumber;
  }
}

function defaultWebhookConfiguration(): WebhookConfiguration {
  return { method: "POST", filters: [], preWebhookUrl: null, postWebhookUrl: null, target: "webhook" };
}

function defaultServiceWebhookConfiguration(): ServiceWebhookConfiguration {
  return { method: "POST", filters: [], preWebhookUrl: null, postWebhookUrl: null };
}

function defaultPhoneNumber(sid: string, phoneNumber: string, now: number): PhoneNumberRecord {
  return {
    sid,
    phoneNumber,
    friendlyName: phoneNumber,
    smsUrl: null,
    smsMethod: "POST",
    smsFallbackUrl: null,
    smsFallbackMethod: "POST",
    statusCallback: null,
    statusCallbackMethod: "POST",
    voiceUrl: null,
    voiceMethod: "POST",
    voiceFallbackUrl: null,
    voiceFallbackMethod: "POST",
    dateCreated: now,
    dateUpdated: now,
  };
}

function bindingFrom(input: ParticipantInput): MessagingBinding | null {
  if (input.address === undefined) {
    if (input.proxyAddress !== undefined) {
      throw twilioErrors.badRequest("'MessagingBinding.ProxyAddress' requires 'MessagingBinding.Address'");
    }
    if (input.projectedAddress === undefined) return null;
    return { type: "sms", address: null, proxyAddress: null, projectedAddress: input.projectedAddress };
  }
  return {
    type: channelOf(input.address),
    address: input.address,
    proxyAddress: input.proxyAddress ?? null,
    projectedAddress: input.projectedAddress ?? null,
  };
}

function channelOf(address: string): MessagingChannel {
  const prefix = /^([a-z]+):/.exec(address)?.[1];
  if (prefix === "whatsapp" || prefix === "messenger" || prefix === "gbm" || prefix === "rcs") return prefix;
  return "sms";
}

function checkAttributes(attributes: string): string {
  try {
    JSON.parse(attributes);
  } catch {
    throw twilioErrors.invalidParameter("Attributes", "must be a valid JSON string");
  }
  return attributes;
}

function parseDate(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw twilioErrors.invalidParameter(name, `must be an ISO 8601 date-time (got '${value}')`);
  return ms;
}

/** ISO 8601 duration (`PT5M`, `P1DT2H`) to milliseconds; `PT0S` removes the timer. */
function parseTimer(value: string | undefined, name: "Timers.Inactive" | "Timers.Closed"): number | null {
  if (value === undefined) return null;
  const match = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(value);
  if (match === null || value === "P" || value.endsWith("T")) {
    throw twilioErrors.invalidParameter(name, `must be an ISO 8601 duration such as PT10M (got '${value}')`);
  }
  const [, weeks, days, hours, minutes, seconds] = match;
  const ms =
    ((Number(weeks ?? 0) * 7 + Number(days ?? 0)) * 24 * 3600 +
      Number(hours ?? 0) * 3600 +
      Number(minutes ?? 0) * 60 +
      Number(seconds ?? 0)) *
    1000;
  if (ms === 0) return null;
  if (name === "Timers.Closed" && ms < 10 * MINUTE_MS) throw twilioErrors.timeToClosedTooShort();
  if (name === "Timers.Inactive" && ms < MINUTE_MS) {
    throw twilioErrors.invalidParameter(name, "must be at least 1 minute");
  }
  return ms;
}
