// Turns a verified Twilio webhook (route + form params) into a typed event: its kind, the id it is
// deduplicated by, the FIFO group that orders it, and the queues that need it. Twilio sends no event id
// for Conversations webhooks, so ids are semantic keys per event type (see README "Event ids").
import type { QueueName, WebhookRouteKind } from "../resources.ts";
import { type FormParams, firstValue } from "./form-body.ts";

/** Conversations pre-action hooks: answered synchronously, never deduplicated or queued. */
export const PreEventTypes = [
  "onMessageAdd",
  "onMessageRemove",
  "onMessageUpdate",
  "onConversationAdd",
  "onConversationRemove",
  "onConversationUpdate",
  "onParticipantAdd",
  "onParticipantRemove",
  "onParticipantUpdate",
  "onUserUpdate",
] as const;
export type PreEventType = (typeof PreEventTypes)[number];

/**
 * Post-action events and the fields that make up each one's id. Fields listed here are required: a
 * webhook without them cannot be deduplicated and is rejected with 400.
 */
export const PostEventKeys = {
  onMessageAdded: ["MessageSid"],
  onMessageRemoved: ["MessageSid"],
  onMessageUpdated: ["MessageSid", "DateUpdated"],
  onParticipantAdded: ["ParticipantSid"],
  onParticipantRemoved: ["ParticipantSid"],
  onParticipantUpdated: ["ParticipantSid", "DateUpdated"],
  onConversationAdded: ["ConversationSid"],
  onConversationRemoved: ["ConversationSid"],
  onConversationUpdated: ["ConversationSid", "DateUpdated"],
  onConversationStateUpdated: ["ConversationSid", "StateTo", "StateUpdated"],
  onDeliveryUpdated: ["DeliveryReceiptSid", "Status", "DateUpdated"],
  onUserAdded: ["UserSid"],
  onUserUpdated: ["UserSid", "DateUpdated"],
} as const satisfies Record<string, readonly string[]>;
export type PostEventType = keyof typeof PostEventKeys;

export type EventKind = "messaging.inbound" | "messaging.status" | `conversations.${PostEventType}`;

export type PostEvent = {
  readonly type: "post";
  readonly kind: EventKind;
  readonly eventId: string;
  /** FIFO message group: one customer address or one conversation, so their events stay in order. */
  readonly groupKey: string;
  readonly destinations: readonly QueueName[];
  readonly accountSid: string | undefined;
};

export type PreEvent = {
  readonly type: "pre";
  readonly eventType: PreEventType;
  readonly accountSid: string | undefined;
};

export type ClassifiedEvent = PostEvent | PreEvent;

/** A webhook that is signed but lacks what its kind requires; the reason is safe to return to the caller. */
export class InvalidEventError extends Error {
  override name = "InvalidEventError";
}

/** Twilio's delivery error for a recipient who replied STOP; compliance treats it as an opt-out. */
export const OptedOutErrorCode = "21610";

const isPreEventType = (value: string): value is PreEventType =>
  (PreEventTypes as readonly string[]).includes(value);

const isPostEventType = (value: string): value is PostEventType => Object.hasOwn(PostEventKeys, value);

const required = (params: FormParams, name: string): string => {
  const value = firstValue(params, name);
  if (value === undefined || value === "") throw new InvalidEventError(`missing required field ${name}`);
  return value;
};

/** SMS and WhatsApp participants author messages with their address; chat users with an identity. */
const isPhoneAddress = (author: string | undefined): boolean =>
  author !== undefined && /^(whatsapp:|messenger:)?\+?\d{5,}$/.test(author);

export const classifyEvent = (route: WebhookRouteKind, params: FormParams): ClassifiedEvent => {
  const accountSid = firstValue(params, "AccountSid");
  switch (route) {
    case "messaging-inbound": {
      const messageSid = required(params, "MessageSid");
      const from = required(params, "From");
      required(params, "To");
      return {
        type: "post",
        kind: "messaging.inbound",
        eventId: `msg-in:${messageSid}`,
        groupKey: `addr:${from}`,
        destinations: ["consent"],
        accountSid,
      };
    }
    case "messaging-status": {
      const messageSid = required(params, "MessageSid");
      const status = required(params, "MessageStatus");
      const to = firstValue(params, "To");
      const optedOut = firstValue(params, "ErrorCode") === OptedOutErrorCode;
      return {
        type: "post",
        kind: "messaging.status",
        eventId: `msg-status:${messageSid}:${status}`,
        groupKey: to ? `addr:${to}` : `msg:${messageSid}`,
        destinations: optedOut ? ["mirror", "consent"] : ["mirror"],
        accountSid,
      };
    }
    case "conversations": {
      const eventType = required(params, "EventType");
      if (isPreEventType(eventType)) return { type: "pre", eventType, accountSid };
      if (!isPostEventType(eventType)) throw new InvalidEventError(`unknown EventType ${eventType}`);
      const keyParts = PostEventKeys[eventType].map((field) => required(params, field));
      const conversationSid = firstValue(params, "ConversationSid");
      const needsConsent =
        (eventType === "onMessageAdded" && isPhoneAddress(firstValue(params, "Author"))) ||
        (eventType === "onDeliveryUpdated" && firstValue(params, "ErrorCode") === OptedOutErrorCode);
      return {
        type: "post",
        kind: `conversations.${eventType}`,
        eventId: `${eventType}:${keyParts.join(":")}`,
        groupKey: conversationSid ? `conv:${conversationSid}` : `${eventType}:${keyParts[0]}`,
        destinations: needsConsent ? ["mirror", "consent"] : ["mirror"],
        accountSid,
      };
    }
  }
};
