// One handler per implemented OpenAPI operation, keyed by operationId. Parameters arrive already
// validated against the operation's schema; handlers read them into typed inputs, call the account
// state, and render the result. The `/v1/Services/{ChatServiceSid}/…` twins share the default-path
// handlers and only accept the account's one (default) Conversation Service.
import { twilioErrors } from "./errors.ts";
import {
  configurationJson,
  conversationJson,
  conversationsPath,
  type JsonObject,
  messageJson,
  outboundMessageJson,
  pageOf,
  participantConversationJson,
  participantJson,
  phoneNumberJson,
  type RenderContext,
  serviceWebhookConfigurationJson,
  V2010,
  v1List,
  v2010List,
  webhookConfigurationJson,
} from "./render.ts";
import {
  type ConversationInput,
  type ConversationRecord,
  type ConversationState,
  ConversationStates,
  type TwilioAccountState,
} from "./state.ts";

export interface HandlerContext {
  readonly state: TwilioAccountState;
  readonly params: Readonly<Record<string, unknown>>;
  readonly pathParams: Readonly<Record<string, string>>;
  /** The request path, for "resource not found" messages. */
  readonly path: string;
  readonly origin: string;
}

export interface HandlerResult {
  readonly status: 200 | 201 | 204;
  readonly body?: JsonObject;
}

export type Handler = (ctx: HandlerContext) => HandlerResult;

// ---- Typed parameter readers (the schema already checked types; these only narrow `unknown`) ---------

const text = (ctx: HandlerContext, name: string): string | undefined => {
  const value = ctx.params[name];
  return typeof value === "string" ? value : undefined;
};

const integer = (ctx: HandlerContext, name: string): number | undefined => {
  const value = ctx.params[name];
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
};

const textList = (ctx: HandlerContext, name: string): string[] | undefined => {
  const value = ctx.params[name];
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === "string");
  return undefined;
};

const httpMethod = (ctx: HandlerContext, name: string): "GET" | "POST" | undefined => {
  const value = text(ctx, name)?.toUpperCase();
  if (value === undefined) return undefined;
  if (value === "GET" || value === "POST") return value;
  throw twilioErrors.invalidParameter(name, `must be GET or POST (got '${text(ctx, name)}')`);
};

const conversationState = (ctx: HandlerContext): ConversationState | undefined => {
  const value = text(ctx, "State");
  return ConversationStates.find((state) => state === value);
};

function paging(ctx: HandlerContext, defaultSize = 50): { pageSize: number; page: number } {
  return { pageSize: integer(ctx, "PageSize") ?? defaultSize, page: integer(ctx, "Page") ?? 0 };
}

// ---- Scope ------------------------------------------------------------------------------------------

/** Rendering scope of a request; a Service twin path naming any but the default service is a 404. */
function scopeOf(ctx: HandlerContext): RenderContext {
  const serviceSid = ctx.pathParams.ChatServiceSid;
  if (serviceSid !== undefined && serviceSid !== ctx.state.chatServiceSid) {
    throw twilioErrors.notFound(ctx.path);
  }
  return { origin: ctx.origin, state: ctx.state, serviceSid };
}

function pathParam(ctx: HandlerContext, name: string): string {
  const value = ctx.pathParams[name];
  if (value === undefined) throw new Error(`route for ${ctx.path} has no {${name}}`);
  return value;
}

function conversationFromPath(ctx: HandlerContext): ConversationRecord {
  const conversation = ctx.state.findConversation(pathParam(ctx, "Sid"));
  if (conversation === undefined) throw twilioErrors.notFound(ctx.path);
  return conversation;
}

const parentConversation = (ctx: HandlerContext): ConversationRecord =>
  ctx.state.conversationBySid(pathParam(ctx, "ConversationSid"), ctx.path);

function conversationInput(ctx: HandlerContext): ConversationInput {
  return {
    friendlyName: text(ctx, "FriendlyName"),
    uniqueName: text(ctx, "UniqueName"),
    attributes: text(ctx, "Attributes"),
    messagingServiceSid: text(ctx, "MessagingServiceSid"),
    state: conversationState(ctx),
    timersInactive: text(ctx, "Timers.Inactive"),
    timersClosed: text(ctx, "Timers.Closed"),
    dateCreated: text(ctx, "DateCreated"),
    dateUpdated: text(ctx, "DateUpdated"),
    emailAddress: text(ctx, "Bindings.Email.Address"),
    emailName: text(ctx, "Bindings.Email.Name"),
  };
}

function dateFilter(ctx: HandlerContext, name: string): number | undefined {
  const value = text(ctx, name);
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw twilioErrors.invalidParameter(name, `must be a date (got '${value}')`);
  return ms;
}

function definedOnly(entries: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entries)) if (value !== undefined) out[key] = value;
  return out;
}

// ---- Conversations v1 ---------------------------------------------------------------------------

const createConversation: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const conversation = ctx.state.createConversation(conversationInput(ctx));
  return { status: 201, body: conversationJson(scope, conversation) };
};

const listConversations: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const state = conversationState(ctx);
  const start = dateFilter(ctx, "StartDate");
  const end = dateFilter(ctx, "EndDate");
  const all = [...ctx.state.conversations.values()].filter(
    (c) =>
      (state === undefined || c.state === state) &&
      (start === undefined || c.dateCreated >= start) &&
      (end === undefined || c.dateCreated <= end),
  );
  const filters = definedOnly({
    State: state,
    StartDate: text(ctx, "StartDate"),
    EndDate: text(ctx, "EndDate"),
  });
  const page = pageOf(all, paging(ctx));
  const body = v1List(scope, "conversations", conversationsPath(scope), filters, page, (c) =>
    conversationJson(scope, c),
  );
  return { status: 200, body };
};

const fetchConversation: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  return { status: 200, body: conversationJson(scope, conversationFromPath(ctx)) };
};

const updateConversation: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const conversation = ctx.state.updateConversation(conversationFromPath(ctx), conversationInput(ctx));
  return { status: 200, body: conversationJson(scope, conversation) };
};

const deleteConversation: Handler = (ctx) => {
  scopeOf(ctx);
  ctx.state.deleteConversation(conversationFromPath(ctx));
  return { status: 204 };
};

const createParticipant: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const participant = ctx.state.createParticipant(parentConversation(ctx), {
    identity: text(ctx, "Identity"),
    address: text(ctx, "MessagingBinding.Address"),
    proxyAddress: text(ctx, "MessagingBinding.ProxyAddress"),
    projectedAddress: text(ctx, "MessagingBinding.ProjectedAddress"),
    attributes: text(ctx, "Attributes"),
    roleSid: text(ctx, "RoleSid"),
    dateCreated: text(ctx, "DateCreated"),
    dateUpdated: text(ctx, "DateUpdated"),
  });
  return { status: 201, body: participantJson(scope, participant) };
};

const listParticipants: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const conversation = parentConversation(ctx);
  const page = pageOf(ctx.state.participantsOf(conversation.sid), paging(ctx));
  const listPath = `${conversationsPath(scope)}/${conversation.sid}/Participants`;
  return {
    status: 200,
    body: v1List(scope, "participants", listPath, {}, page, (p) => participantJson(scope, p)),
  };
};

function participantFromPath(ctx: HandlerContext, conversation: ConversationRecord) {
  const participant = ctx.state.findParticipant(conversation.sid, pathParam(ctx, "Sid"));
  if (participant === undefined) throw twilioErrors.notFound(ctx.path);
  return participant;
}

const fetchParticipant: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  return { status: 200, body: participantJson(scope, participantFromPath(ctx, parentConversation(ctx))) };
};

const updateParticipant: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const conversation = parentConversation(ctx);
  const participant = ctx.state.updateParticipant(conversation, participantFromPath(ctx, conversation), {
    attributes: text(ctx, "Attributes"),
    roleSid: text(ctx, "RoleSid"),
    identity: text(ctx, "Identity"),
    proxyAddress: text(ctx, "MessagingBinding.ProxyAddress"),
    projectedAddress: text(ctx, "MessagingBinding.ProjectedAddress"),
    lastReadMessageIndex:
      ctx.params.LastReadMessageIndex === null ? null : integer(ctx, "LastReadMessageIndex"),
    lastReadTimestamp: text(ctx, "LastReadTimestamp"),
    dateCreated: text(ctx, "DateCreated"),
    dateUpdated: text(ctx, "DateUpdated"),
  });
  return { status: 200, body: participantJson(scope, participant) };
};

const deleteParticipant: Handler = (ctx) => {
  scopeOf(ctx);
  ctx.state.deleteParticipant(participantFromPath(ctx, parentConversation(ctx)));
  return { status: 204 };
};

const createMessage: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const message = ctx.state.createMessage(parentConversation(ctx), {
    author: text(ctx, "Author"),
    body: text(ctx, "Body"),
    attributes: text(ctx, "Attributes"),
    mediaSid: text(ctx, "MediaSid"),
    contentSid: text(ctx, "ContentSid"),
    contentVariables: text(ctx, "ContentVariables"),
    subject: text(ctx, "Subject"),
    dateCreated: text(ctx, "DateCreated"),
    dateUpdated: text(ctx, "DateUpdated"),
  });
  return { status: 201, body: messageJson(scope, message) };
};

const listMessages: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const conversation = parentConversation(ctx);
  const order = text(ctx, "Order") === "desc" ? "desc" : "asc";
  const all = ctx.state.messagesOf(conversation.sid);
  if (order === "desc") all.reverse();
  const page = pageOf(all, paging(ctx));
  const listPath = `${conversationsPath(scope)}/${conversation.sid}/Messages`;
  const filters = definedOnly({ Order: text(ctx, "Order") });
  return {
    status: 200,
    body: v1List(scope, "messages", listPath, filters, page, (m) => messageJson(scope, m)),
  };
};

function messageFromPath(ctx: HandlerContext, conversation: ConversationRecord) {
  const message = ctx.state.findMessage(conversation.sid, pathParam(ctx, "Sid"));
  if (message === undefined) throw twilioErrors.notFound(ctx.path);
  return message;
}

const fetchMessage: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  return { status: 200, body: messageJson(scope, messageFromPath(ctx, parentConversation(ctx))) };
};

const updateMessage: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const conversation = parentConversation(ctx);
  const message = ctx.state.updateMessage(conversation, messageFromPath(ctx, conversation), {
    author: text(ctx, "Author"),
    body: text(ctx, "Body"),
    attributes: text(ctx, "Attributes"),
    subject: text(ctx, "Subject"),
    dateCreated: text(ctx, "DateCreated"),
    dateUpdated: text(ctx, "DateUpdated"),
  });
  return { status: 200, body: messageJson(scope, message) };
};

const deleteMessage: Handler = (ctx) => {
  scopeOf(ctx);
  ctx.state.deleteMessage(messageFromPath(ctx, parentConversation(ctx)));
  return { status: 204 };
};

const listParticipantConversations: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const identity = text(ctx, "Identity");
  const address = text(ctx, "Address");
  if (identity === undefined && address === undefined) {
    throw twilioErrors.badRequest("Either 'Identity' or 'Address' is required");
  }
  const page = pageOf(ctx.state.participantsMatching({ identity, address }), paging(ctx));
  const listPath =
    scope.serviceSid === undefined
      ? "/v1/ParticipantConversations"
      : `/v1/Services/${scope.serviceSid}/ParticipantConversations`;
  const filters = definedOnly({ Identity: identity, Address: address });
  return {
    status: 200,
    body: v1List(scope, "conversations", listPath, filters, page, (p) =>
      participantConversationJson(scope, p),
    ),
  };
};

const fetchConfiguration: Handler = (ctx) => ({ status: 200, body: configurationJson(scopeOf(ctx)) });

const fetchWebhookConfiguration: Handler = (ctx) => ({
  status: 200,
  body: webhookConfigurationJson(scopeOf(ctx), ctx.state.webhookConfiguration),
});

const updateWebhookConfiguration: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const config = ctx.state.webhookConfiguration;
  const target = text(ctx, "Target");
  config.method = httpMethod(ctx, "Method") ?? config.method;
  config.filters = textList(ctx, "Filters") ?? config.filters;
  config.preWebhookUrl = text(ctx, "PreWebhookUrl") ?? config.preWebhookUrl;
  config.postWebhookUrl = text(ctx, "PostWebhookUrl") ?? config.postWebhookUrl;
  if (target === "webhook" || target === "flex") config.target = target;
  return { status: 200, body: webhookConfigurationJson(scope, config) };
};

const fetchServiceWebhookConfiguration: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const config = ctx.state.serviceWebhookConfiguration;
  return { status: 200, body: serviceWebhookConfigurationJson(scope, ctx.state.chatServiceSid, config) };
};

const updateServiceWebhookConfiguration: Handler = (ctx) => {
  const scope = scopeOf(ctx);
  const config = ctx.state.serviceWebhookConfiguration;
  config.method = httpMethod(ctx, "Method") ?? config.method;
  config.filters = textList(ctx, "Filters") ?? config.filters;
  config.preWebhookUrl = text(ctx, "PreWebhookUrl") ?? config.preWebhookUrl;
  config.postWebhookUrl = text(ctx, "PostWebhookUrl") ?? config.postWebhookUrl;
  return { status: 200, body: serviceWebhookConfigurationJson(scope, ctx.state.chatServiceSid, config) };
};

// ---- Programmable Messaging 2010-04-01 -------------------------------------------------------------

/** 2010-04-01 paths carry the account; credentials for one account never reach another. */
function checkAccount(ctx: HandlerContext): RenderContext {
  const accountSid = pathParam(ctx, "AccountSid");
  if (accountSid !== ctx.state.accountSid) throw twilioErrors.accountMismatch(accountSid);
  return scopeOf(ctx);
}

const createOutboundMessage: Handler = (ctx) => {
  const scope = checkAccount(ctx);
  const message = ctx.state.sendMessage({
    to: text(ctx, "To") ?? "",
    from: text(ctx, "From"),
    messagingServiceSid: text(ctx, "MessagingServiceSid"),
    body: text(ctx, "Body"),
    contentSid: text(ctx, "ContentSid"),
    contentVariables: text(ctx, "ContentVariables"),
    statusCallback: text(ctx, "StatusCallback"),
    mediaUrls: textList(ctx, "MediaUrl") ?? [],
  });
  return { status: 201, body: outboundMessageJson(scope, message) };
};

const listOutboundMessages: Handler = (ctx) => {
  const scope = checkAccount(ctx);
  const to = text(ctx, "To");
  const from = text(ctx, "From");
  // Twilio lists messages newest first.
  const all = [...ctx.state.outboundMessages.values()]
    .filter((m) => (to === undefined || m.to === to) && (from === undefined || m.from === from))
    .reverse();
  const listPath = `/${V2010}/Accounts/${scope.state.accountSid}/Messages.json`;
  const page = pageOf(all, paging(ctx));
  const filters = definedOnly({ To: to, From: from });
  return {
    status: 200,
    body: v2010List("messages", listPath, filters, page, (m) => outboundMessageJson(scope, m)),
  };
};

const fetchOutboundMessage: Handler = (ctx) => {
  const scope = checkAccount(ctx);
  const message = ctx.state.outboundMessages.get(pathParam(ctx, "Sid"));
  if (message === undefined) throw twilioErrors.notFound(ctx.path);
  return { status: 200, body: outboundMessageJson(scope, message) };
};

const listPhoneNumbers: Handler = (ctx) => {
  const scope = checkAccount(ctx);
  const phoneNumber = text(ctx, "PhoneNumber");
  const friendlyName = text(ctx, "FriendlyName");
  const all = [...ctx.state.phoneNumbers.values()].filter(
    (p) =>
      (phoneNumber === undefined || p.phoneNumber === phoneNumber) &&
      (friendlyName === undefined || p.friendlyName === friendlyName),
  );
  const listPath = `/${V2010}/Accounts/${scope.state.accountSid}/IncomingPhoneNumbers.json`;
  const page = pageOf(all, paging(ctx));
  const filters = definedOnly({ PhoneNumber: phoneNumber, FriendlyName: friendlyName });
  return {
    status: 200,
    body: v2010List("incoming_phone_numbers", listPath, filters, page, (p) => phoneNumberJson(scope, p)),
  };
};

function phoneNumberFromPath(ctx: HandlerContext) {
  const phone = ctx.state.phoneNumbers.get(pathParam(ctx, "Sid"));
  if (phone === undefined) throw twilioErrors.notFound(ctx.path);
  return phone;
}

const fetchPhoneNumber: Handler = (ctx) => {
  const scope = checkAccount(ctx);
  return { status: 200, body: phoneNumberJson(scope, phoneNumberFromPath(ctx)) };
};

const updatePhoneNumber: Handler = (ctx) => {
  const scope = checkAccount(ctx);
  const phone = ctx.state.updatePhoneNumber(phoneNumberFromPath(ctx), {
    friendlyName: text(ctx, "FriendlyName"),
    smsUrl: text(ctx, "SmsUrl"),
    smsMethod: httpMethod(ctx, "SmsMethod"),
    smsFallbackUrl: text(ctx, "SmsFallbackUrl"),
    smsFallbackMethod: httpMethod(ctx, "SmsFallbackMethod"),
    statusCallback: text(ctx, "StatusCallback"),
    statusCallbackMethod: httpMethod(ctx, "StatusCallbackMethod"),
    voiceUrl: text(ctx, "VoiceUrl"),
    voiceMethod: httpMethod(ctx, "VoiceMethod"),
    voiceFallbackUrl: text(ctx, "VoiceFallbackUrl"),
    voiceFallbackMethod: httpMethod(ctx, "VoiceFallbackMethod"),
  });
  return { status: 200, body: phoneNumberJson(scope, phone) };
};

/** Implemented operations; any other operation of the specs answers 501 "not implemented". */
export const handlers: Readonly<Record<string, Handler>> = {
  FetchConfiguration: fetchConfiguration,
  FetchConfigurationWebhook: fetchWebhookConfiguration,
  UpdateConfigurationWebhook: updateWebhookConfiguration,
  FetchServiceWebhookConfiguration: fetchServiceWebhookConfiguration,
  UpdateServiceWebhookConfiguration: updateServiceWebhookConfiguration,

  CreateConversation: createConversation,
  ListConversation: listConversations,
  FetchConversation: fetchConversation,
  UpdateConversation: updateConversation,
  DeleteConversation: deleteConversation,
  CreateConversationParticipant: createParticipant,
  ListConversationParticipant: listParticipants,
  FetchConversationParticipant: fetchParticipant,
  UpdateConversationParticipant: updateParticipant,
  DeleteConversationParticipant: deleteParticipant,
  CreateConversationMessage: createMessage,
  ListConversationMessage: listMessages,
  FetchConversationMessage: fetchMessage,
  UpdateConversationMessage: updateMessage,
  DeleteConversationMessage: deleteMessage,
  ListParticipantConversation: listParticipantConversations,

  CreateServiceConversation: createConversation,
  ListServiceConversation: listConversations,
  FetchServiceConversation: fetchConversation,
  UpdateServiceConversation: updateConversation,
  DeleteServiceConversation: deleteConversation,
  CreateServiceConversationParticipant: createParticipant,
  ListServiceConversationParticipant: listParticipants,
  FetchServiceConversationParticipant: fetchParticipant,
  UpdateServiceConversationParticipant: updateParticipant,
  DeleteServiceConversationParticipant: deleteParticipant,
  CreateServiceConversationMessage: createMessage,
  ListServiceConversationMessage: listMessages,
  FetchServiceConversationMessage: fetchMessage,
  UpdateServiceConversationMessage: updateMessage,
  DeleteServiceConversationMessage: deleteMessage,
  ListServiceParticipantConversation: listParticipantConversations,

  CreateMessage: createOutboundMessage,
  ListMessage: listOutboundMessages,
  FetchMessage: fetchOutboundMessage,
  ListIncomingPhoneNumber: listPhoneNumbers,
  FetchIncomingPhoneNumber: fetchPhoneNumber,
  UpdateIncomingPhoneNumber: updatePhoneNumber,
};
