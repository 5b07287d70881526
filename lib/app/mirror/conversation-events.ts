// Conversations events → the conversation registry: activity (messages, participants, new
// conversations) and state changes keep the closer's view current; the loop guard recognises messages
// we posted; onDeliveryUpdated settles SMS that Conversations itself delivered and moves the status of
// what `sendOutbound` posted.
import { firstValue } from "../../domain/form-body.ts";
import {
  conversationSendAttributes,
  isOutboundStatus,
  isOwnMessage,
  parseAttributes,
} from "../../domain/mirror.ts";
import type { Envelope } from "../../domain/queue-envelope.ts";
import { isValidTenantId, tenantFor } from "../../domain/tenants.ts";
import type { MirrorDeps, MirrorOutcome, MirrorResult, ThreadState } from "./ports.ts";
import { applyStatus } from "./statuses.ts";

const eventTime = (value: string | undefined, fallback: number): number => {
  const parsed = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isFinite(parsed) ? parsed : fallback;
};

const tenantOfEvent = (deps: MirrorDeps, envelope: Envelope): string => {
  const attributes = parseAttributes(firstValue(envelope.params, "Attributes"));
  const tenantId = attributes.tenantId;
  if (typeof tenantId === "string" && isValidTenantId(tenantId)) return tenantId;
  return tenantFor(deps.tenants, {
    to: firstValue(envelope.params, "MessagingBinding.ProxyAddress"),
    messagingServiceSid: firstValue(envelope.params, "MessagingServiceSid"),
  });
};

const registryStates: Readonly<Record<string, ThreadState>> = {
  active: "active",
  inactive: "inactive",
  closed: "closed",
};

/** Twilio's delivery receipts carry ErrorCode 0 when there was no error. */
const deliveryErrorCode = (value: string | undefined): string | undefined =>
  value === undefined || value === "" || value === "0" ? undefined : value;

/**
 * onDeliveryUpdated: Conversations delivered one of its messages as an SMS/WhatsApp message. That
 * message is never mirrored back; if it is one `sendOutbound` posted, its status goes onto it.
 */
const recordDelivery = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  const params = envelope.params;
  const conversationSid = firstValue(params, "ConversationSid") || undefined;
  const messageSid = firstValue(params, "MessageSid") || undefined;
  const channelMessageSid = firstValue(params, "ChannelMessageSid") || undefined;
  const base = conversationSid === undefined ? {} : { conversationSid };
  if (channelMessageSid !== undefined) {
    await deps.ledger.settle(channelMessageSid, {
      state: "native",
      conversationSid,
      messageSid,
      at: deps.now(),
    });
  }
  const status = firstValue(params, "Status");
  if (messageSid !== undefined && status !== undefined && isOutboundStatus(status)) {
    const ours = await deps.ledger.get(messageSid);
    const sendId = ours?.sendId;
    if (ours?.state === "posted" && sendId !== undefined) {
      return applyStatus(
        deps,
        { sid: messageSid, status, errorCode: deliveryErrorCode(firstValue(params, "ErrorCode")) },
        (entry) =>
          conversationSendAttributes({
            sendId,
            template: entry.template,
            status: entry.status,
            errorCode: entry.errorCode,
          }),
        base,
      );
    }
  }
  return { outcome: channelMessageSid === undefined ? "ignored" : "conversations-delivery", ...base };
};

export const recordConversationEvent = async (
  deps: MirrorDeps,
  envelope: Envelope,
): Promise<MirrorResult> => {
  const params = envelope.params;
  const eventType = envelope.kind.slice("conversations.".length);
  const conversationSid = firstValue(params, "ConversationSid");
  if (eventType === "onDeliveryUpdated") return recordDelivery(deps, envelope);
  if (conversationSid === undefined || conversationSid === "") return { outcome: "ignored" };
  const tenantId = tenantOfEvent(deps, envelope);
  const done = (outcome: MirrorOutcome): MirrorResult => ({ outcome, tenantId, conversationSid });
  switch (eventType) {
    case "onMessageAdded":
    case "onConversationAdded":
    case "onParticipantAdded": {
      const at = eventTime(firstValue(params, "DateCreated"), envelope.receivedAt);
      await deps.registry.touch({ conversationSid, tenantId, at });
      if (eventType !== "onMessageAdded") return done("registry-updated");
      const own = isOwnMessage(
        firstValue(params, "Author"),
        parseAttributes(firstValue(params, "Attributes")),
      );
      return done(own ? "own-message" : "registry-updated");
    }
    case "onConversationStateUpdated": {
      const state = registryStates[firstValue(params, "StateTo") ?? ""];
      if (state === undefined) return done("ignored");
      const reason = firstValue(params, "Reason")?.toLowerCase();
      await deps.registry.setState({
        conversationSid,
        tenantId,
        state,
        at: eventTime(firstValue(params, "StateUpdated"), envelope.receivedAt),
        outcome: state === "closed" && reason !== undefined ? reason : undefined,
      });
      return done("registry-updated");
    }
    case "onConversationRemoved": {
      await deps.registry.setState({
        conversationSid,
        tenantId,
        state: "deleted",
        at: eventTime(firstValue(params, "DateRemoved"), envelope.receivedAt),
        outcome: "removed",
      });
      return done("registry-updated");
    }
    default:
      return done("ignored");
  }
};
