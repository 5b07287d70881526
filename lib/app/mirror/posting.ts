// Posting into a thread exactly once, and recognising what is already there: our own copy (after a
// crash or an ambiguous failure) and messages Twilio put into the thread itself (a bound customer's
// captured inbound message, or a Conversations delivery).
import { mirroredCopyOf, nativeCandidates, type ThreadMessage } from "../../domain/mirror.ts";
import { backoffDelay, realSleep } from "../retry.ts";
import type { MirrorDeps, PostResult, ThreadPost } from "./ports.ts";
import { idempotent, isRetryableFailure, isUnprocessed, twilioRetryPolicy } from "./twilio-retry.ts";

/** How far apart a captured message and our webhook may be and still be the same message. */
const CaptureWindowMs = 10 * 60_000;
/** Our copy of a message is among the newest of its thread: one customer's records are serialised. */
const RecentMessages = 50;

/** The thread's newest messages, newest first; undefined when the conversation does not exist. */
export const recentMessages = (
  deps: Pick<MirrorDeps, "twilio" | "retry">,
  conversationSid: string,
): Promise<ThreadMessage[] | undefined> =>
  idempotent(deps, () => deps.twilio.recentMessages(conversationSid, RecentMessages));

/** Our copy of this Messaging message among a thread's newest messages. */
export const mirroredCopy =
  (messagingMessageSid: string) =>
  (recent: readonly ThreadMessage[]): ThreadMessage | undefined =>
    mirroredCopyOf(recent, messagingMessageSid);

/**
 * Completes the ledger entry on our copy of this Messaging message if the thread has one: an earlier
 * attempt posted it and died before recording it, or the entry saying so expired. `recent` saves the
 * read when the caller already has the thread's newest messages. False when there is no copy.
 */
export const completeFromCopy = async (
  deps: Pick<MirrorDeps, "twilio" | "retry" | "ledger" | "now">,
  messagingMessageSid: string,
  conversationSid: string,
  recent?: readonly ThreadMessage[],
): Promise<boolean> => {
  const messages = recent ?? (await recentMessages(deps, conversationSid));
  const copy = messages === undefined ? undefined : mirroredCopyOf(messages, messagingMessageSid);
  if (copy === undefined) return false;
  await deps.ledger.complete(messagingMessageSid, {
    conversationSid,
    messageSid: copy.messageSid,
    at: deps.now(),
  });
  return true;
};

/**
 * Posts once. A create is not idempotent, so after an ambiguous failure (5xx, timeout: the post may
 * have landed) we look for the message (`findPosted`: by `messagingMessageSid`, or by `sendId`) before
 * posting again; only 20429 is repeated without looking.
 */
export const postOnce = async (
  deps: Pick<MirrorDeps, "twilio" | "retry">,
  conversationSid: string,
  message: ThreadPost,
  findPosted: (recent: readonly ThreadMessage[]) => ThreadMessage | undefined,
): Promise<PostResult> => {
  const retry = twilioRetryPolicy(deps.retry, isRetryableFailure);
  const sleep = retry.sleep ?? realSleep;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await deps.twilio.postMessage(conversationSid, message);
    } catch (error) {
      if (!isRetryableFailure(error) || attempt + 1 >= retry.attempts) throw error;
      if (!isUnprocessed(error)) {
        const recent = await recentMessages(deps, conversationSid);
        const copy = recent === undefined ? undefined : findPosted(recent);
        if (copy !== undefined) return { kind: "posted", messageSid: copy.messageSid };
      }
      const delay = backoffDelay(attempt, retry);
      if (retry.remainingMs !== undefined && retry.remainingMs() < delay + 1000) throw error;
      await sleep(delay);
    }
  }
};

/**
 * Settles this Messaging message on a message Twilio put into the thread itself: the customer's own
 * inbound message, captured by their bound pair (`captured`), or a thread message that Conversations
 * delivered as this SMS (`native`). The first match within `CaptureWindowMs` that no other Messaging
 * SID has claimed is claimed, so equal texts are matched one to one. False when there is none.
 */
export const settleOnTwilioCopy = async (
  deps: Pick<MirrorDeps, "ledger" | "now">,
  messagingMessageSid: string,
  settled: { readonly state: "captured" | "native"; readonly conversationSid: string },
  recent: readonly ThreadMessage[],
  probe: Omit<Parameters<typeof nativeCandidates>[1], "windowMs">,
): Promise<boolean> => {
  for (const candidate of nativeCandidates(recent, { ...probe, windowMs: CaptureWindowMs })) {
    if (await deps.ledger.claimMessage(candidate.messageSid, messagingMessageSid, deps.now())) {
      await deps.ledger.settle(messagingMessageSid, {
        ...settled,
        messageSid: candidate.messageSid,
        at: deps.now(),
      });
      return true;
    }
  }
  return false;
};
