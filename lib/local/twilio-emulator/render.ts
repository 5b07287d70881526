// Renders emulator records as Twilio's JSON resources (snake_case, every field of the spec's response
// schema present, nulls included) and builds list pages for both paging styles: Conversations v1's
// `meta` with absolute URLs and 2010-04-01's top-level relative `*_uri` fields.
import type {
  ConversationRecord,
  MessageRecord,
  OutboundMessageRecord,
  ParticipantRecord,
  PhoneNumberRecord,
  ServiceWebhookConfiguration,
  TwilioAccountState,
  WebhookConfiguration,
} from "./state.ts";

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface RenderContext {
  /** Base URL the client used to reach the emulator; Twilio's `url`/`meta` fields are absolute. */
  readonly origin: string;
  readonly state: TwilioAccountState;
  /** Set on `/v1/Services/{ChatServiceSid}/…` twins, whose URLs and schemas differ slightly. */
  readonly serviceSid: string | undefined;
}

export const V2010 = "2010-04-01";

/** Conversations v1 timestamps: ISO 8601 in UTC, seconds precision (`2015-12-16T22:18:37Z`). */
export const isoDate = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** 2010-04-01 timestamps: RFC 2822 (`Thu, 30 Jul 2015 20:12:31 +0000`). */
export const rfc2822Date = (ms: number): string => new Date(ms).toUTCString().replace(/GMT$/, "+0000");

export function conversationsPath(ctx: RenderContext): string {
  return ctx.serviceSid === undefined ? "/v1/Conversations" : `/v1/Services/${ctx.serviceSid}/Conversations`;
}

export function conversationJson(ctx: RenderContext, conversation: ConversationRecord): JsonObject {
  const url = `${ctx.origin}${conversationsPath(ctx)}/${conversation.sid}`;
  return {
    account_sid: ctx.state.accountSid,
    chat_service_sid: conversation.chatServiceSid,
    messaging_service_sid: conversation.messagingServiceSid,
    sid: conversation.sid,
    friendly_name: conversation.friendlyName,
    unique_name: conversation.uniqueName,
    attributes: conversation.attributes,
    state: conversation.state,
    date_created: isoDate(conversation.dateCreated),
    date_updated: isoDate(conversation.dateUpdated),
    timers: timersJson(conversation),
    url,
    links: {
      participants: `${url}/Participants`,
      messages: `${url}/Messages`,
      webhooks: `${url}/Webhooks`,
      export: `${url}/Export`,
    },
    bindings:
      conversation.emailBinding === null
        ? {}
        : { email: { address: conversation.emailBinding.address, name: conversation.emailBinding.name } },
  };
}

/** Only pending timers are shown, as Twilio does: `{}` once nothing is scheduled. */
function timersJson(conversation: ConversationRecord): JsonObject {
  const timers: JsonObject = {};
  const { inactiveAfterMs, closedAfterMs } = conversation.timers;
  if (conversation.state === "active" && inactiveAfterMs !== null) {
    timers.date_inactive = isoDate(conversation.lastActivity + inactiveAfterMs);
  }
  if (conversation.state !== "closed" && closedAfterMs !== null) {
    timers.date_closed = isoDate(conversation.lastActivity + closedAfterMs);
  }
  return timers;
}

export function participantJson(ctx: RenderContext, participant: ParticipantRecord): JsonObject {
  const binding = participant.binding;
  return {
    account_sid: ctx.state.accountSid,
    ...serviceField(ctx),
    conversation_sid: participant.conversationSid,
    sid: participant.sid,
    identity: participant.identity,
    attributes: participant.attributes,
    messaging_binding: binding === null ? null : bindingJson(binding),
    role_sid: participant.roleSid,
    date_created: isoDate(participant.dateCreated),
    date_updated: isoDate(participant.dateUpdated),
    url: `${ctx.origin}${conversationsPath(ctx)}/${participant.conversationSid}/Participants/${participant.sid}`,
    last_read_message_index: participant.lastReadMessageIndex,
    last_read_timestamp: participant.lastReadTimestamp,
  };
}

function bindingJson(binding: NonNullable<ParticipantRecord["binding"]>): JsonObject {
  const json: JsonObject = { type: binding.type };
  if (binding.address !== null) json.address = binding.address;
  if (binding.proxyAddress !== null) json.proxy_address = binding.proxyAddress;
  if (binding.projectedAddress !== null) json.projected_address = binding.projectedAddress;
  return json;
}

/** The chat participants and messages of the default-service paths have no `chat_service_sid` in the spec. */
function serviceField(ctx: RenderContext): JsonObject {
  return ctx.serviceSid === undefined ? {} : { chat_service_sid: ctx.serviceSid };
}

export function messageJson(ctx: RenderContext, message: MessageRecord): JsonObject {
  const url = `${ctx.origin}${conversationsPath(ctx)}/${message.conversationSid}/Messages/${message.sid}`;
  return {
    account_sid: ctx.state.accountSid,
    ...serviceField(ctx),
    conversation_sid: message.conversationSid,
    sid: message.sid,
    index: message.index,
    author: message.author,
    body: message.body,
    media:
      message.mediaSids.length === 0
        ? null
        : message.mediaSids.map((sid) => ({
            sid,
            size: 0,
            content_type: "application/octet-stream",
            filename: null,
            category: "media",
          })),
    attributes: message.attributes,
    participant_sid: message.participantSid,
    date_created: isoDate(message.dateCreated),
    date_updated: isoDate(message.dateUpdated),
    url,
    delivery: null,
    links: { delivery_receipts: `${url}/Receipts`, channel_metadata: `${url}/ChannelMetadata` },
    content_sid: message.contentSid,
  };
}

export function participantConversationJson(ctx: RenderContext, participant: ParticipantRecord): JsonObject {
  const conversation = ctx.state.conversations.get(participant.conversationSid);
  if (conversation === undefined) throw new Error(`participant ${participant.sid} outlived its conversation`);
  const conversationUrl = `${ctx.origin}${conversationsPath(ctx)}/${conversation.sid}`;
  return {
    account_sid: ctx.state.accountSid,
    chat_service_sid: conversation.chatServiceSid,
    participant_sid: participant.sid,
    participant_user_sid: participant.userSid,
    participant_identity: participant.identity,
    participant_messaging_binding: participant.binding === null ? null : bindingJson(participant.binding),
    conversation_sid: conversation.sid,
    conversation_unique_name: conversation.uniqueName,
    conversation_friendly_name: conversation.friendlyName,
    conversation_attributes: conversation.attributes,
    conversation_date_created: isoDate(conversation.dateCreated),
    conversation_date_updated: isoDate(conversation.dateUpdated),
    conversation_created_by: "system",
    conversation_state: conversation.state,
    conversation_timers: timersJson(conversation),
    links: {
      participant: `${conversationUrl}/Participants/${participant.sid}`,
      conversation: conversationUrl,
    },
  };
}

export function configurationJson(ctx: RenderContext): JsonObject {
  const url = `${ctx.origin}/v1/Configuration`;
  return {
    account_sid: ctx.state.accountSid,
    default_chat_service_sid: ctx.state.chatServiceSid,
    default_messaging_service_sid: ctx.state.messagingServiceSid,
    default_inactive_timer: null,
    default_closed_timer: null,
    url,
    links: {
      service: `${ctx.origin}/v1/Services/${ctx.state.chatServiceSid}/Configuration`,
      webhooks: `${url}/Webhooks`,
    },
  };
}

export function webhookConfigurationJson(ctx: RenderContext, config: WebhookConfiguration): JsonObject {
  return {
    account_sid: ctx.state.accountSid,
    method: config.method,
    filters: [...config.filters],
    pre_webhook_url: config.preWebhookUrl,
    post_webhook_url: config.postWebhookUrl,
    target: config.target,
    url: `${ctx.origin}/v1/Configuration/Webhooks`,
  };
}

export function serviceWebhookConfigurationJson(
  ctx: RenderContext,
  serviceSid: string,
  config: ServiceWebhookConfiguration,
): JsonObject {
  return {
    account_sid: ctx.state.accountSid,
    chat_service_sid: serviceSid,
    pre_webhook_url: config.preWebhookUrl,
    post_webhook_url: config.postWebhookUrl,
    filters: [...config.filters],
    method: config.method,
    url: `${ctx.origin}/v1/Services/${serviceSid}/Configuration/Webhooks`,
  };
}

export const accountPath = (ctx: RenderContext): string => `/${V2010}/Accounts/${ctx.state.accountSid}`;

export function outboundMessageJson(ctx: RenderContext, message: OutboundMessageRecord): JsonObject {
  const uri = `${accountPath(ctx)}/Messages/${message.sid}`;
  return {
    account_sid: ctx.state.accountSid,
    api_version: V2010,
    body: message.body ?? "",
    date_created: rfc2822Date(message.dateCreated),
    date_sent: null,
    date_updated: rfc2822Date(message.dateUpdated),
    direction: "outbound-api",
    error_code: null,
    error_message: null,
    from: message.from,
    messaging_service_sid: message.messagingServiceSid,
    num_media: String(message.mediaUrls.length),
    num_segments: String(segmentsOf(message.body ?? "")),
    price: null,
    price_unit: "USD",
    sid: message.sid,
    status: message.status,
    subresource_uris: { media: `${uri}/Media.json` },
    to: message.to,
    uri: `${uri}.json`,
  };
}

/** GSM-7 segments: 160 characters alone, 153 when concatenated (UCS-2 is not modelled). */
function segmentsOf(body: string): number {
  const length = [...body].length;
  return length <= 160 ? 1 : Math.ceil(length / 153);
}

export function phoneNumberJson(ctx: RenderContext, phone: PhoneNumberRecord): JsonObject {
  return {
    account_sid: ctx.state.accountSid,
    address_sid: null,
    address_requirements: "none",
    api_version: V2010,
    beta: false,
    capabilities: { mms: true, sms: true, voice: true, fax: false },
    date_created: rfc2822Date(phone.dateCreated),
    date_updated: rfc2822Date(phone.dateUpdated),
    friendly_name: phone.friendlyName,
    identity_sid: null,
    phone_number: phone.phoneNumber,
    origin: "twilio",
    sid: phone.sid,
    sms_application_sid: null,
    sms_fallback_method: phone.smsFallbackMethod,
    sms_fallback_url: phone.smsFallbackUrl,
    sms_method: phone.smsMethod,
    sms_url: phone.smsUrl,
    status_callback: phone.statusCallback,
    status_callback_method: phone.statusCallbackMethod,
    trunk_sid: null,
    uri: `${accountPath(ctx)}/IncomingPhoneNumbers/${phone.sid}.json`,
    voice_receive_mode: "voice",
    voice_application_sid: null,
    voice_caller_id_lookup: false,
    voice_fallback_method: phone.voiceFallbackMethod,
    voice_fallback_url: phone.voiceFallbackUrl,
    voice_method: phone.voiceMethod,
    voice_url: phone.voiceUrl,
    emergency_status: "Inactive",
    emergency_address_sid: null,
    emergency_address_status: "unregistered",
    bundle_sid: null,
    status: "in-use",
    type: "local",
  };
}

// ---- Paging ----------------------------------------------------------------------------------------

export interface PageRequest {
  readonly pageSize: number;
  readonly page: number;
}

export interface Page<T> {
  readonly items: T[];
  readonly request: PageRequest;
  readonly hasNext: boolean;
}

export function pageOf<T>(all: readonly T[], request: PageRequest): Page<T> {
  const start = request.page * request.pageSize;
  return {
    items: all.slice(start, start + request.pageSize),
    request,
    hasNext: start + request.pageSize < all.length,
  };
}

/** Query string for a page link: the list's own filters first, then the paging parameters. */
function pageQuery(filters: Readonly<Record<string, string>>, pageSize: number, page: number): string {
  const query = new URLSearchParams(filters);
  query.set("PageSize", String(pageSize));
  query.set("Page", String(page));
  // Twilio's tokens are opaque cursors; the emulator's pages are positional, so any token will do.
  if (page > 0) query.set("PageToken", `PT${page}`);
  return query.toString();
}

/** Conversations v1 list body: `{ [key]: [...], meta: { … absolute URLs … } }`. */
export function v1List<T>(
  ctx: RenderContext,
  key: string,
  listPath: string,
  filters: Readonly<Record<string, string>>,
  page: Page<T>,
  render: (item: T) => JsonObject,
): JsonObject {
  const { pageSize, page: number } = page.request;
  const link = (n: number) => `${ctx.origin}${listPath}?${pageQuery(filters, pageSize, n)}`;
  return {
    [key]: page.items.map(render),
    meta: {
      page: number,
      page_size: pageSize,
      first_page_url: link(0),
      previous_page_url: number > 0 ? link(number - 1) : null,
      url: link(number),
      next_page_url: page.hasNext ? link(number + 1) : null,
      key,
    },
  };
}

/** 2010-04-01 list body: `{ [key]: [...], page, page_size, start, end, uri, … }` with relative URIs. */
export function v2010List<T>(
  key: string,
  listPath: string,
  filters: Readonly<Record<string, string>>,
  page: Page<T>,
  render: (item: T) => JsonObject,
): JsonObject {
  const { pageSize, page: number } = page.request;
  const link = (n: number) => `${listPath}?${pageQuery(filters, pageSize, n)}`;
  const start = number * pageSize;
  return {
    [key]: page.items.map(render),
    end: page.items.length === 0 ? start : start + page.items.length - 1,
    first_page_uri: link(0),
    next_page_uri: page.hasNext ? link(number + 1) : null,
    page: number,
    page_size: pageSize,
    previous_page_uri: number > 0 ? link(number - 1) : null,
    start,
    uri: link(number),
  };
}
