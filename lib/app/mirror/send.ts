// `sendOutbound`, the project's send path to a customer: never to someone who opted out (checked first,
// fail-closed), then through their thread when they are bound in it (Conversations delivers it once),
// else through Programmable Messaging (the mirror copies it into the thread from its status callbacks).
// Nothing may reach the customer twice (README.md "Mirroring", "Never twice").
import { randomUUID } from "node:crypto";
import { parseChannelAddress } from "../../domain/consent.ts";
import {
  type CustomerKey,
  conversationSendAttributes,
  conversationSendOf,
  customerKey,
} from "../../domain/mirror.ts";
import { tenantFor } from "../../domain/tenants.ts";
import { ConsentUnavailableError, RecipientOptedOutError, SentNotRecordedError } from "../errors.ts";
import { withRetry } from "../retry.ts";
import type { OutboundSend, OutboundSendDeps, OutboundSendResult } from "./ports.ts";
import { postOnce } from "./posting.ts";
import { noteUnwritable } from "./threads.ts";
import { idempotent, isUnprocessed, twilioRetryPolicy } from "./twilio-retry.ts";

/**
 * Refuses a send to a person who opted out of its sender, before anything is read from or sent to
 * Twilio. Fail-closed like the pre-event check: when the store cannot answer, nothing is sent, because a
 * refused send can be retried and a message to someone who said STOP cannot be taken back.
 */
const ensureNotOptedOut = async (deps: OutboundSendDeps, tenantId: string, send: OutboundSend) => {
  const recipient = parseChannelAddress(send.to);
  // Consent covers SMS and WhatsApp only, as in the pre-event check: other channels have no STOP.
  if (recipient === undefined) return;
  const sender = {
    proxy: parseChannelAddress(send.from)?.address,
    messagingServiceSid: send.messagingServiceSid,
  };
  let suppressed: boolean;
  try {
    suppressed = await deps.consent.isSuppressed({ tenantId, ...recipient, sender });
  } catch (error) {
    throw new ConsentUnavailableError({ cause: error });
  }
  if (suppressed) throw new RecipientOptedOutError(recipient);
};

/**
 * The customer's thread if a post there reaches them: it is open and they are its participant, checked
 * with Twilio rather than taken from the mapping, because a post into a thread without them would reach
 * no one. A send that names another sender than the binding's proxy is left to the Messaging API:
 * Conversations would deliver from the proxy.
 */
const deliveringThread = async (
  deps: OutboundSendDeps,
  key: CustomerKey,
  from: string | undefined,
): Promise<string | undefined> => {
  const mapping = await deps.threads.get(key);
  if (mapping === undefined) return undefined;
  const conversationSid = mapping.conversationSid;
  const thread = await idempotent(deps, () => deps.twilio.fetchThread(conversationSid));
  // Closing releases the binding; an initializing conversation takes no messages yet.
  if (thread?.state !== "active" && thread?.state !== "inactive") return undefined;
  const binding = await idempotent(deps, () => deps.twilio.participantBinding(conversationSid, key.address));
  if (binding === undefined) return undefined;
  if (from !== undefined && binding.proxyAddress !== undefined && binding.proxyAddress !== from) {
    return undefined;
  }
  return conversationSid;
};

/** Bookkeeping after the message went out: a failure must not look like a failed send to the caller. */
const recordSent = async (
  sent: OutboundSendResult,
  record: () => Promise<void>,
): Promise<OutboundSendResult> => {
  try {
    await record();
  } catch (error) {
    throw new SentNotRecordedError(sent, { cause: error });
  }
  return sent;
};

/**
 * Sends a message to a customer so that they receive it exactly once and it appears in their thread.
 *
 * - The customer opted out of this sender (the compliance suppression store, same rule as the
 *   onParticipantAdd check): `RecipientOptedOutError`, nothing sent or posted. The store cannot answer:
 *   `ConsentUnavailableError`, nothing sent either.
 * - The customer is bound in an open thread: the message is posted there (`ContentSid` and
 *   `ContentVariables` for a template) and Conversations delivers it. Sending it through the Messaging
 *   API instead would reach them twice once the mirror posted its copy. Its delivery statuses come
 *   back as onDeliveryUpdated events and update the message's attributes. An ambiguous failure (5xx,
 *   timeout) is checked for by the post's `sendId` before the post is repeated.
 * - Otherwise it goes through Programmable Messaging, and the template is recorded so the status
 *   callbacks mirror it with `attributes.template`. Only 20429 is retried: Twilio offers no way to look
 *   for a Messaging send after an ambiguous failure.
 *
 * Throws `SentNotRecordedError` (never resend) when the message went out but recording it failed.
 */
export const sendOutbound = async (
  deps: OutboundSendDeps,
  send: OutboundSend,
): Promise<OutboundSendResult> => {
  const tenantId = tenantFor(deps.tenants, { to: send.from, messagingServiceSid: send.messagingServiceSid });
  await ensureNotOptedOut(deps, tenantId, send);
  const conversationSid = await deliveringThread(deps, customerKey(tenantId, send.to), send.from);
  if (conversationSid !== undefined) {
    const sendId = randomUUID();
    const posted = await postOnce(
      deps,
      conversationSid,
      {
        author: send.author ?? deps.settingsFor(tenantId).businessAuthor,
        body: send.body,
        contentSid: send.contentSid,
        contentVariables: send.contentVariables,
        attributes: conversationSendAttributes({
          sendId,
          template: send.contentSid,
          status: undefined,
          errorCode: undefined,
        }),
      },
      (recent) => conversationSendOf(recent, sendId),
    );
    if (posted.kind === "posted") {
      const messageSid = posted.messageSid;
      return recordSent({ via: "conversation", conversationSid, messageSid }, async () => {
        const at = deps.now();
        // Keyed by the IM SID: onDeliveryUpdated names the message, and the entry finds its attributes.
        await deps.ledger.recordSend(messageSid, { tenantId, template: send.contentSid, sendId, at });
        await deps.ledger.complete(messageSid, { conversationSid, messageSid, at });
        await deps.registry.touch({ conversationSid, tenantId, at });
      });
    }
    // Closed or deleted since the check: the binding went with it, so a Messaging send arrives once.
    await noteUnwritable(deps, conversationSid, posted.kind, tenantId);
  }
  const sent = await withRetry(
    () => deps.twilio.sendMessage(send),
    twilioRetryPolicy(deps.retry, isUnprocessed),
  );
  return recordSent({ via: "messaging", sid: sent.sid, status: sent.status }, () =>
    deps.ledger.recordSend(sent.sid, { tenantId, template: send.contentSid, at: deps.now() }),
  );
};
