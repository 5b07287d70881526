// Webhook requests as Twilio sends them: the form parameters of each event we simulate, the headers
// Twilio adds, and the X-Twilio-Signature computed by the twilio SDK (the reference implementation) over
// the public URL and the parameters. Used by `npm run simulate`.
import { randomBytes, randomUUID } from "node:crypto";
import twilio from "twilio";

export type FormParams = Readonly<Record<string, string | readonly string[]>>;

export const sid = (prefix: string): string => `${prefix}${randomBytes(16).toString("hex")}`;

/** The form body Twilio posts: `application/x-www-form-urlencoded`, repeated names for lists. */
export const encodeForm = (params: FormParams): string => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of typeof value === "string" ? [value] : value) search.append(name, item);
  }
  return search.toString();
};

export const signatureFor = (authToken: string, url: string, params: FormParams): string => {
  const sdkParams: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(params))
    sdkParams[name] = typeof value === "string" ? value : [...value];
  return twilio.getExpectedTwilioSignature(authToken, url, sdkParams);
};

/** Headers Twilio's webhook client sends (besides Host and Content-Length). */
export const twilioHeaders = (signature: string): Record<string, string> => ({
  "content-type": "application/x-www-form-urlencoded",
  "user-agent": "TwilioProxy/1.1",
  accept: "*/*",
  "cache-control": "max-age=259200",
  "x-home-region": "us1",
  "i-twilio-idempotency-token": randomUUID(),
  "x-twilio-signature": signature,
});

const mediaParams = (mediaUrls: readonly string[]): Record<string, string> => {
  const params: Record<string, string> = { NumMedia: String(mediaUrls.length) };
  mediaUrls.forEach((url, index) => {
    params[`MediaUrl${index}`] = url;
    params[`MediaContentType${index}`] = url.match(/\.(png)$/i)
      ? "image/png"
      : url.match(/\.(gif)$/i)
        ? "image/gif"
        : "image/jpeg";
  });
  return params;
};

export const whatsapp = (address: string): string =>
  address.startsWith("whatsapp:") ? address : `whatsapp:${address}`;

export type InboundInput = {
  readonly accountSid: string;
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly mediaUrls: readonly string[];
  readonly messagingServiceSid?: string;
};

export const inboundSmsParams = (input: InboundInput): Record<string, string> => {
  const messageSid = sid(input.mediaUrls.length > 0 ? "MM" : "SM");
  return {
    ToCountry: "US",
    ToState: "CA",
    SmsMessageSid: messageSid,
    ...mediaParams(input.mediaUrls),
    ToCity: "",
    FromState: "CA",
    SmsSid: messageSid,
    FromCity: "SAN FRANCISCO",
    Body: input.body,
    FromCountry: "US",
    To: input.to,
    ...(input.messagingServiceSid === undefined ? {} : { MessagingServiceSid: input.messagingServiceSid }),
    ToZip: "",
    NumSegments: String(Math.max(1, Math.ceil(input.body.length / 160))),
    MessageSid: messageSid,
    AccountSid: input.accountSid,
    From: input.from,
    ApiVersion: "2010-04-01",
    SmsStatus: "received",
  };
};

export const inboundWhatsAppParams = (
  input: InboundInput & { readonly profileName: string },
): Record<string, string> => {
  const messageSid = sid(input.mediaUrls.length > 0 ? "MM" : "SM");
  const from = whatsapp(input.from);
  return {
    SmsMessageSid: messageSid,
    ...mediaParams(input.mediaUrls),
    ProfileName: input.profileName,
    MessageType: input.mediaUrls.length > 0 ? "image" : "text",
    SmsSid: messageSid,
    WaId: from.replace(/^whatsapp:\+?/, ""),
    SmsStatus: "received",
    Body: input.body,
    To: whatsapp(input.to),
    ...(input.messagingServiceSid === undefined ? {} : { MessagingServiceSid: input.messagingServiceSid }),
    NumSegments: "1",
    ReferralNumMedia: "0",
    MessageSid: messageSid,
    AccountSid: input.accountSid,
    From: from,
    ApiVersion: "2010-04-01",
  };
};

export const statusParams = (input: {
  readonly accountSid: string;
  readonly messageSid: string;
  readonly status: string;
  readonly errorCode?: string;
  readonly from: string;
  readonly to: string;
}): Record<string, string> => ({
  ...(input.errorCode === undefined ? {} : { ErrorCode: input.errorCode }),
  SmsSid: input.messageSid,
  SmsStatus: input.status,
  MessageStatus: input.status,
  To: input.to,
  MessageSid: input.messageSid,
  AccountSid: input.accountSid,
  From: input.from,
  ApiVersion: "2010-04-01",
  ...(input.status === "delivered" || input.status === "undelivered"
    ? { RawDlrDoneDate: new Date().toISOString().replace(/\D/g, "").slice(2, 12) }
    : {}),
});

/** The common part of every Conversations webhook. */
const conversationsBase = (
  accountSid: string,
  eventType: string,
  source: string,
): Record<string, string> => ({
  AccountSid: accountSid,
  EventType: eventType,
  Source: source,
  RetryCount: "0",
  WebhookType: "webhook",
  ChatServiceSid: DefaultChatServiceSid,
});

/** Stand-ins for the account's default Conversations service and Messaging Service. */
export const DefaultChatServiceSid = `IS${"0".repeat(32)}`;
export const DefaultMessagingServiceSid = `MG${"0".repeat(32)}`;

const isPhoneAddress = (author: string): boolean => /^(whatsapp:)?\+?\d{5,}$/.test(author);

const bindingType = (address: string): string => (address.startsWith("whatsapp:") ? "WHATSAPP" : "SMS");

/** How the message entered the conversation: an SMS/WhatsApp participant, or an SDK (chat) user. */
const messageSource = (author: string): Record<string, string> =>
  isPhoneAddress(author)
    ? { Source: author.startsWith("whatsapp:") ? "WHATSAPP" : "SMS" }
    : { Source: "SDK", ClientIdentity: author };

export const messageAddedParams = (input: {
  readonly accountSid: string;
  readonly conversationSid: string;
  readonly author: string;
  readonly body: string;
  readonly index: number;
  readonly participantSid?: string;
}): Record<string, string> => ({
  ...conversationsBase(input.accountSid, "onMessageAdded", "SDK"),
  ...messageSource(input.author),
  ConversationSid: input.conversationSid,
  MessageSid: sid("IM"),
  MessagingServiceSid: DefaultMessagingServiceSid,
  Index: String(input.index),
  DateCreated: new Date().toISOString(),
  Body: input.body,
  Author: input.author,
  ...(input.participantSid === undefined ? {} : { ParticipantSid: input.participantSid }),
  Attributes: "{}",
});

export const participantAddedParams = (input: {
  readonly accountSid: string;
  readonly conversationSid: string;
  readonly address: string;
  readonly proxy: string;
  readonly participantSid?: string;
}): Record<string, string> => ({
  ...conversationsBase(input.accountSid, "onParticipantAdded", "API"),
  ConversationSid: input.conversationSid,
  ParticipantSid: input.participantSid ?? sid("MB"),
  DateCreated: new Date().toISOString(),
  RoleSid: `RL${"0".repeat(32)}`,
  Attributes: "{}",
  "MessagingBinding.Address": input.address,
  "MessagingBinding.ProxyAddress": input.proxy,
  "MessagingBinding.Type": bindingType(input.address),
});

export const stateUpdatedParams = (input: {
  readonly accountSid: string;
  readonly conversationSid: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}): Record<string, string> => ({
  ...conversationsBase(input.accountSid, "onConversationStateUpdated", "API"),
  ConversationSid: input.conversationSid,
  StateFrom: input.from,
  StateTo: input.to,
  StateUpdated: new Date().toISOString(),
  Reason: input.reason,
  MessagingServiceSid: DefaultMessagingServiceSid,
});

export const preParticipantAddParams = (input: {
  readonly accountSid: string;
  readonly conversationSid: string;
  readonly address: string;
  readonly proxy: string;
}): Record<string, string> => ({
  ...conversationsBase(input.accountSid, "onParticipantAdd", "API"),
  ConversationSid: input.conversationSid,
  Attributes: "{}",
  "MessagingBinding.Address": input.address,
  "MessagingBinding.ProxyAddress": input.proxy,
  "MessagingBinding.Type": bindingType(input.address),
});

export const preMessageAddParams = (input: {
  readonly accountSid: string;
  readonly conversationSid: string;
  readonly author: string;
  readonly body: string;
}): Record<string, string> => ({
  ...conversationsBase(input.accountSid, "onMessageAdd", "SDK"),
  ...messageSource(input.author),
  ConversationSid: input.conversationSid,
  Body: input.body,
  Author: input.author,
  Attributes: "{}",
});
