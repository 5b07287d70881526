// Pure rules of mirroring Programmable Messaging traffic into Conversations threads: which channel an
// address belongs to, the unique name of a customer's thread, how outbound statuses rank, what a
// mirrored message carries in `attributes`, and which thread messages were ours or Twilio's own.
// No SDK here: the use case (lib/app/mirror/) feeds these functions parsed values.
import { type FormParams, firstValue } from "./form-body.ts";

/** Written into `attributes.mirroredBy` of everything the mirror posts; the loop guard looks for it. */
export const MirrorMarker = "twilio-backbone";

export const MirrorChannels = ["sms", "whatsapp", "messenger", "rcs"] as const;
export type MirrorChannel = (typeof MirrorChannels)[number];

/** An input the mirror cannot act on, whatever happens later: retrying will not help. */
export class InvalidMirrorInputError extends Error {
  override name = "InvalidMirrorInputError";
}

const prefixedChannels: readonly MirrorChannel[] = ["whatsapp", "messenger", "rcs"];

/** SMS/MMS addresses are bare E.164; other channels prefix the address (`whatsapp:+4479…`). */
export const channelOf = (address: string): MirrorChannel => {
  const prefix = /^([a-z]+):/.exec(address)?.[1];
  if (prefix === undefined) {
    if (!/^\+?[0-9]{3,15}$/.test(address)) {
      throw new InvalidMirrorInputError("address is neither E.164 nor channel-prefixed");
    }
    return "sms";
  }
  const channel = prefixedChannels.find((candidate) => candidate === prefix);
  if (channel === undefined) throw new InvalidMirrorInputError(`unsupported channel prefix ${prefix}:`);
  if (address.length === prefix.length + 1) throw new InvalidMirrorInputError("address has no identifier");
  return channel;
};

/** One customer of one tenant on one channel: the key of exactly one live thread. */
export type CustomerKey = {
  readonly tenantId: string;
  readonly channel: MirrorChannel;
  /** The address exactly as Twilio sends it (`+1415…`, `whatsapp:+1415…`): the participant's address. */
  readonly address: string;
};

export const customerKey = (tenantId: string, address: string): CustomerKey => ({
  tenantId,
  channel: channelOf(address),
  address,
});

const identifierOf = (key: CustomerKey): string =>
  key.channel === "sms" ? key.address : key.address.slice(key.channel.length + 1);

/**
 * E.164 numbers become their digits; anything else is marked with a leading `-` and keeps [A-Za-z0-9]
 * with every other UTF-8 byte as `.hh`. Lossless, so two customers can never share a name.
 */
const encodeIdentifier = (identifier: string): string => {
  if (/^\+[0-9]+$/.test(identifier)) return identifier.slice(1);
  let encoded = "-";
  for (const byte of Buffer.from(identifier, "utf8")) {
    const char = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9]/.test(char) ? char : `.${byte.toString(16).padStart(2, "0")}`;
  }
  return encoded;
};

const decodeIdentifier = (encoded: string): string => {
  if (!encoded.startsWith("-")) return `+${encoded}`;
  const bytes: number[] = [];
  const body = encoded.slice(1);
  for (let i = 0; i < body.length; i += 1) {
    if (body[i] === ".") {
      bytes.push(Number.parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(body.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString("utf8");
};

/**
 * The thread's `uniqueName`: `t_<tenant>_<channel>_<id>` for the first thread, `…_g<n>` for the
 * n-th after earlier ones closed. Twilio never frees the name of a closed conversation for reuse and a
 * closed conversation cannot be renamed (50377), so a replacement thread needs a new name; every
 * worker probes generations in order and so converges on the same name (50353 makes the create
 * idempotent). Only [A-Za-z0-9._-] occur (twilio-node puts the name into the URL path unencoded) and
 * the `t_` prefix means it can never look like a conversation SID (50390).
 */
export const threadUniqueName = (key: CustomerKey, generation: number): string => {
  if (!Number.isInteger(generation) || generation < 1) throw new RangeError("generation starts at 1");
  const base = `t_${key.tenantId}_${key.channel}_${encodeIdentifier(identifierOf(key))}`;
  return generation === 1 ? base : `${base}_g${generation}`;
};

export type ParsedThreadName = { readonly key: CustomerKey; readonly generation: number };

/** Recognises a name made by `threadUniqueName`; undefined for any other conversation. */
export const parseThreadUniqueName = (uniqueName: string): ParsedThreadName | undefined => {
  const match = /^t_([A-Za-z0-9-]{1,32})_([a-z]+)_(-?[A-Za-z0-9.]+?)(?:_g([0-9]+))?$/.exec(uniqueName);
  if (match === null) return undefined;
  const [, tenantId = "", channelName = "", encoded = "", generation] = match;
  const channel = MirrorChannels.find((candidate) => candidate === channelName);
  if (channel === undefined) return undefined;
  const identifier = decodeIdentifier(encoded);
  const address = channel === "sms" ? identifier : `${channel}:${identifier}`;
  const parsedGeneration = generation === undefined ? 1 : Number(generation);
  if (parsedGeneration < 2 && generation !== undefined) return undefined;
  return { key: { tenantId, channel, address }, generation: parsedGeneration };
};

export const isConversationSid = (value: string): boolean => /^CH[0-9a-fA-F]{32}$/.test(value);

// ---- Outbound statuses ------------------------------------------------------------------------------

/**
 * Where each outbound status sits in a message's life. A status replaces the recorded one only if it
 * ranks strictly higher, so callbacks that arrive out of order end in the same final state:
 * - the forward path accepted < scheduled < queued < sending < sent < delivered < read;
 * - failed, undelivered and canceled are terminal failures: they beat every in-flight state (a late
 *   "sent" never hides a failure) but lose to delivered/read, which are the handset's own positive
 *   evidence; between two failures the first one recorded stays;
 * - partially_delivered (multi-recipient channels) sits between the failures and delivered.
 * `receiving`/`received` belong to inbound messages and are not outbound statuses.
 */
export const OutboundStatusRank = {
  accepted: 10,
  scheduled: 20,
  queued: 30,
  sending: 40,
  sent: 50,
  failed: 60,
  undelivered: 60,
  canceled: 60,
  partially_delivered: 65,
  delivered: 70,
  read: 80,
} as const;
export type OutboundStatus = keyof typeof OutboundStatusRank;

export const isOutboundStatus = (value: string): value is OutboundStatus =>
  Object.hasOwn(OutboundStatusRank, value);

export const statusRank = (status: OutboundStatus): number => OutboundStatusRank[status];

/** True when `incoming` should replace `current` (undefined = nothing recorded yet). */
export const supersedes = (incoming: OutboundStatus, current: OutboundStatus | undefined): boolean =>
  current === undefined || statusRank(incoming) > statusRank(current);

// ---- Parsed webhook payloads ------------------------------------------------------------------------

export type MediaItem = { readonly url: string; readonly contentType: string | undefined };

/** Twilio caps a message at 10 media; anything past NumMedia or 10 is ignored. */
export const mediaOf = (params: FormParams): MediaItem[] => {
  const count = Math.min(Number.parseInt(firstValue(params, "NumMedia") ?? "0", 10) || 0, 10);
  const media: MediaItem[] = [];
  for (let i = 0; i < count; i += 1) {
    const url = firstValue(params, `MediaUrl${i}`);
    if (url === undefined || url === "") continue;
    media.push({ url, contentType: firstValue(params, `MediaContentType${i}`) || undefined });
  }
  return media;
};

export type InboundMessage = {
  readonly messagingMessageSid: string;
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly media: readonly MediaItem[];
  readonly messagingServiceSid: string | undefined;
};

const requiredField = (params: FormParams, name: string): string => {
  const value = firstValue(params, name);
  if (value === undefined || value === "") throw new InvalidMirrorInputError(`missing field ${name}`);
  return value;
};

export const parseInboundMessage = (params: FormParams): InboundMessage => ({
  messagingMessageSid: requiredField(params, "MessageSid"),
  from: requiredField(params, "From"),
  to: requiredField(params, "To"),
  body: firstValue(params, "Body") ?? "",
  media: mediaOf(params),
  messagingServiceSid: firstValue(params, "MessagingServiceSid") || undefined,
});

export type StatusCallback = {
  readonly messagingMessageSid: string;
  readonly status: string;
  /** Our sender (number or WhatsApp sender); absent only in odd callbacks. */
  readonly from: string | undefined;
  /** The customer. */
  readonly to: string;
  readonly errorCode: string | undefined;
  readonly messagingServiceSid: string | undefined;
};

export const parseStatusCallback = (params: FormParams): StatusCallback => ({
  messagingMessageSid: requiredField(params, "MessageSid"),
  status: requiredField(params, "MessageStatus"),
  from: firstValue(params, "From") || undefined,
  to: requiredField(params, "To"),
  errorCode: firstValue(params, "ErrorCode") || undefined,
  messagingServiceSid: firstValue(params, "MessagingServiceSid") || undefined,
});

// ---- Attributes -----------------------------------------------------------------------------------

/** Conversations limits message attributes to 4 KB (conversation attributes to 16 KB). */
export const MessageAttributesMaxBytes = 4096;

const byteLength = (text: string): number => Buffer.byteLength(text, "utf8");

export const conversationAttributes = (key: CustomerKey, generation: number): string =>
  JSON.stringify({ mirroredBy: MirrorMarker, tenantId: key.tenantId, channel: key.channel, generation });

/**
 * Attributes of a mirrored inbound message. Media URLs are kept (not re-uploaded); if they would push
 * the attributes past Twilio's 4 KB, the last ones are dropped and counted in `mediaOmitted`.
 */
export const inboundAttributes = (input: {
  readonly message: InboundMessage;
  readonly channel: MirrorChannel;
  readonly receivedAt: number;
}): string => {
  const base = {
    mirroredBy: MirrorMarker,
    direction: "inbound",
    channel: input.channel,
    messagingMessageSid: input.message.messagingMessageSid,
    receivedAt: new Date(input.receivedAt).toISOString(),
  };
  const media = input.message.media.map((item) => ({ url: item.url, contentType: item.contentType ?? null }));
  for (let kept = media.length; kept >= 0; kept -= 1) {
    const omitted = media.length - kept;
    const json = JSON.stringify({
      ...base,
      ...(media.length > 0 ? { media: media.slice(0, kept) } : {}),
      ...(omitted > 0 ? { mediaOmitted: omitted } : {}),
    });
    if (byteLength(json) <= MessageAttributesMaxBytes) return json;
  }
  return JSON.stringify({ ...base, mediaOmitted: media.length });
};

export const outboundAttributes = (input: {
  readonly messagingMessageSid: string;
  readonly channel: MirrorChannel;
  readonly template: string | undefined;
  readonly status: OutboundStatus;
  readonly errorCode: string | undefined;
}): string =>
  JSON.stringify({
    mirroredBy: MirrorMarker,
    direction: "outbound",
    channel: input.channel,
    messagingMessageSid: input.messagingMessageSid,
    template: input.template ?? null,
    status: input.status,
    errorCode: input.errorCode ?? null,
  });

/**
 * Attributes of a message `sendOutbound` posted into a thread the customer is bound in: Conversations
 * itself delivers it, so there is no Messaging SID to name. `sendId` is ours, written before the post,
 * so a post whose outcome is unknown (5xx, timeout) can be looked for instead of repeated. `status`
 * starts empty and follows the message's onDeliveryUpdated events.
 */
export const conversationSendAttributes = (input: {
  readonly sendId: string;
  readonly template: string | undefined;
  readonly status: OutboundStatus | undefined;
  readonly errorCode: string | undefined;
}): string =>
  JSON.stringify({
    mirroredBy: MirrorMarker,
    direction: "outbound",
    outbound: true,
    sendId: input.sendId,
    template: input.template ?? null,
    status: input.status ?? null,
    errorCode: input.errorCode ?? null,
  });

/** A message `sendOutbound` posted for Conversations to deliver (see `conversationSendAttributes`). */
export const isConversationSend = (attributes: Readonly<Record<string, unknown>>): boolean =>
  attributes.mirroredBy === MirrorMarker && attributes.outbound === true;

/**
 * Conversations rejects nothing-to-show messages and a media-only SMS has an empty Body; the media
 * themselves are referenced in attributes, so the body says what is there instead of being empty.
 */
export const inboundBody = (message: InboundMessage): string => {
  if (message.body !== "") return message.body;
  const count = message.media.length;
  return count === 0 ? "[empty message]" : `[${count} attachment${count === 1 ? "" : "s"}]`;
};

export const outboundBody = (body: string | undefined, template: string | undefined): string =>
  body !== undefined && body !== "" ? body : template !== undefined ? `[template ${template}]` : "[message]";

export const parseAttributes = (raw: string | undefined | null): Readonly<Record<string, unknown>> => {
  if (raw === undefined || raw === null || raw === "") return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
};

/**
 * Loop guard: a message we (or any REST caller using the default author) posted. Such messages are
 * never new inbound work, even if someone enables X-Twilio-Webhook-Enabled and the event comes back.
 */
export const isOwnMessage = (author: string | undefined, attributes: Readonly<Record<string, unknown>>) =>
  author === "system" || attributes.mirroredBy === MirrorMarker;

// ---- Messages already in a thread -----------------------------------------------------------------

export type ThreadMessage = {
  readonly messageSid: string;
  readonly index: number;
  readonly author: string | undefined;
  readonly body: string | undefined;
  readonly mediaCount: number;
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Epoch ms. */
  readonly createdAt: number;
};

/** The message `sendOutbound` posted under this `sendId`, if it landed. */
export const conversationSendOf = (
  messages: readonly ThreadMessage[],
  sendId: string,
): ThreadMessage | undefined =>
  messages.find((message) => isConversationSend(message.attributes) && message.attributes.sendId === sendId);

/** The message we posted for this Messaging SID, found by its attribute, not by hope. */
export const mirroredCopyOf = (
  messages: readonly ThreadMessage[],
  messagingMessageSid: string,
): ThreadMessage | undefined =>
  messages.find(
    (message) =>
      message.attributes.mirroredBy === MirrorMarker &&
      message.attributes.messagingMessageSid === messagingMessageSid,
  );

/**
 * Messages Twilio put into the thread itself that could be this Messaging message: same text and media
 * count, not ours, created within `windowMs` of when we received the webhook, by an author the caller
 * accepts (the customer for inbound; anyone else for a Conversations delivery). Oldest first, so equal
 * texts are matched in order; the caller claims one so it never counts for two Messaging SIDs.
 * `conversationSends` also admits what `sendOutbound` posted for Conversations to deliver: ours, but
 * delivered by Twilio exactly like an agent's message.
 */
export const nativeCandidates = (
  messages: readonly ThreadMessage[],
  probe: {
    readonly author: (author: string | undefined) => boolean;
    readonly body: string;
    readonly mediaCount: number;
    readonly around: number;
    readonly windowMs: number;
    readonly conversationSends?: boolean;
  },
): ThreadMessage[] =>
  messages
    .filter(
      (message) =>
        (!isOwnMessage(message.author, message.attributes) ||
          (probe.conversationSends === true && isConversationSend(message.attributes))) &&
        probe.author(message.author) &&
        (message.body ?? "") === probe.body &&
        message.mediaCount === probe.mediaCount &&
        Math.abs(message.createdAt - probe.around) <= probe.windowMs,
    )
    .sort((a, b) => a.index - b.index);

// ---- Outbound messages summarised on the conversation ----------------------------------------------

/**
 * Where Messaging-API sends to a customer who is bound in the thread are listed instead of posted: a
 * post would be delivered to the customer a second time, an update of the conversation's attributes is
 * delivered to nobody.
 */
export const OutboundSummaryAttribute = "outboundNotMirrored";
/** Newest entries kept; older ones are dropped so the list never crowds out other attributes. */
export const OutboundSummaryLimit = 20;
/** Conversations limits conversation attributes to 16 KB. */
export const ConversationAttributesMaxBytes = 16 * 1024;

export type OutboundSummaryEntry = {
  readonly messagingMessageSid: string;
  readonly status: OutboundStatus;
  readonly errorCode: string | undefined;
  readonly template: string | undefined;
  /** Epoch ms of the status. */
  readonly at: number;
};

export type SummaryMerge =
  | { readonly kind: "merged"; readonly attributes: string }
  /** The list already shows this status or a higher-ranked one. */
  | { readonly kind: "unchanged" }
  /** Not a JSON object, someone else's `outboundNotMirrored`, or over 16 KB even with our entry alone. */
  | { readonly kind: "unmergeable" };

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Puts `entry` into the conversation's `outboundNotMirrored` list, keeping every other attribute. The
 * list moves forward only (the same ranking as message statuses), so redelivered or late callbacks never
 * undo a better status even if they reach this function. The entry updated last goes to the end, and
 * only the newest `limit` entries that fit in 16 KB are kept. Attributes we cannot read as an object are
 * never overwritten: they belong to someone else.
 */
export const mergeOutboundSummary = (
  current: string,
  entry: OutboundSummaryEntry,
  limit: number = OutboundSummaryLimit,
): SummaryMerge => {
  let parsed: unknown;
  try {
    parsed = current.trim() === "" ? {} : JSON.parse(current);
  } catch {
    return { kind: "unmergeable" };
  }
  if (!isRecord(parsed)) return { kind: "unmergeable" };
  const existing = parsed[OutboundSummaryAttribute];
  if (existing !== undefined && !Array.isArray(existing)) return { kind: "unmergeable" };
  const list = (existing ?? []).filter(isRecord);
  const previous = list.find((item) => item.messagingMessageSid === entry.messagingMessageSid);
  const previousStatus = previous?.status;
  if (
    typeof previousStatus === "string" &&
    isOutboundStatus(previousStatus) &&
    !supersedes(entry.status, previousStatus)
  ) {
    return { kind: "unchanged" };
  }
  const next = [
    ...list.filter((item) => item !== previous),
    {
      messagingMessageSid: entry.messagingMessageSid,
      status: entry.status,
      errorCode: entry.errorCode ?? null,
      template: entry.template ?? null,
      at: new Date(entry.at).toISOString(),
    },
  ];
  for (let kept = Math.min(next.length, Math.max(limit, 1)); kept >= 1; kept -= 1) {
    const attributes = JSON.stringify({ ...parsed, [OutboundSummaryAttribute]: next.slice(-kept) });
    if (byteLength(attributes) <= ConversationAttributesMaxBytes) return { kind: "merged", attributes };
  }
  return { kind: "unmergeable" };
};
