// Outbound Messaging (status callbacks): the first callback we act on for a send puts it into the
// customer's thread as a system message, unless the customer is bound there (Twilio would deliver the
// copy to them again: the send is listed on the conversation instead) or the SMS is Conversations
// delivering one of the thread's own messages; later callbacks move its status forward.
import {
  customerKey,
  isOutboundStatus,
  outboundAttributes,
  outboundBody,
  parseStatusCallback,
} from "../../domain/mirror.ts";
import type { Envelope } from "../../domain/queue-envelope.ts";
import { tenantFor } from "../../domain/tenants.ts";
import { ThreadUnavailableError } from "../errors.ts";
import type { MirrorDeps, MirrorResult } from "./ports.ts";
import { completeFromCopy, mirroredCopy, postOnce, recentMessages, settleOnTwilioCopy } from "./posting.ts";
import { applyStatus, applySummary, mirroredCopyAttributes } from "./statuses.ts";
import {
  bindAfterPost,
  customerOf,
  MaxThreadReplacements,
  noteUnwritable,
  resolveThread,
  withBindingChecked,
} from "./threads.ts";
import { idempotent } from "./twilio-retry.ts";

export const mirrorStatus = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  const callback = parseStatusCallback(envelope.params);
  const status = callback.status;
  if (!isOutboundStatus(status)) return { outcome: "ignored" };
  const sid = callback.messagingMessageSid;
  const tenantId = tenantFor(deps.tenants, {
    to: callback.from,
    messagingServiceSid: callback.messagingServiceSid,
  });
  const key = customerKey(tenantId, callback.to);
  const update = { sid, status, errorCode: callback.errorCode };
  const base = { tenantId, address: key.address };
  const asCopy = mirroredCopyAttributes(sid, key.channel);

  const entry = await deps.ledger.get(sid);
  if (entry?.state === "native" || entry?.state === "captured") {
    return { outcome: "conversations-delivery", ...base };
  }
  if (entry?.state === "posted") return applyStatus(deps, update, asCopy, base);
  if (entry?.state === "summarized") return applySummary(deps, update, envelope.receivedAt, base);

  // First callback we act on for this message: put a system message into the customer's thread, or,
  // if the customer is bound there, list the message on the conversation.
  const sent = await idempotent(deps, () => deps.twilio.fetchSentMessage(sid));
  if (sent?.direction.startsWith("inbound")) return { outcome: "ignored", ...base };
  const customer = customerOf(
    deps,
    tenantId,
    callback.to,
    callback.from ?? sent?.from,
    callback.messagingServiceSid,
    envelope.receivedAt,
    true,
  );
  let thread = await resolveThread(deps, customer);
  for (let replacements = 0; replacements <= MaxThreadReplacements; replacements += 1) {
    const conversationSid = thread.conversationSid;
    const recent = await recentMessages(deps, conversationSid);
    if (recent !== undefined) {
      // Our copy may exist although the ledger does not say so: a crash after posting, or an expired entry.
      const otherThread =
        entry?.conversationSid !== undefined && entry.conversationSid !== conversationSid
          ? entry.conversationSid
          : undefined;
      if (
        (await completeFromCopy(deps, sid, conversationSid, recent)) ||
        (otherThread !== undefined && (await completeFromCopy(deps, sid, otherThread)))
      ) {
        return applyStatus(deps, update, asCopy, base);
      }
      thread = await withBindingChecked(deps, customer, thread);
      if (thread.bound) {
        // This SMS may be Conversations delivering a message of the thread (an agent's, or one
        // `sendOutbound` posted) to the customer.
        if (
          sent?.body !== undefined &&
          sent.body !== "" &&
          (await settleOnTwilioCopy(deps, sid, { state: "native", conversationSid }, recent, {
            author: (author) => author !== key.address,
            body: sent.body,
            mediaCount: 0,
            around: envelope.receivedAt,
            conversationSends: true,
          }))
        ) {
          return { outcome: "conversations-delivery", ...base, conversationSid };
        }
        // Closing released the binding: then the post below finds the thread closed and the copy goes
        // into its replacement, as for any unbound thread.
        const open = await idempotent(deps, () => deps.twilio.fetchThread(conversationSid));
        if (open !== undefined && open.state !== "closed") {
          // The customer already has this message from the Messaging API, and Twilio delivers every post
          // in this thread to them: a copy would reach them twice. Conversation attributes reach no one.
          await deps.registry.touch({ conversationSid, tenantId, at: envelope.receivedAt });
          const settled = await deps.ledger.settle(sid, {
            state: "summarized",
            conversationSid,
            messageSid: undefined,
            at: deps.now(),
          });
          if (!settled) return { outcome: "duplicate", ...base, conversationSid };
          await applySummary(deps, update, envelope.receivedAt, base);
          return { outcome: "outbound-not-posted", reason: "customer-bound", ...base, conversationSid };
        }
      }
      if (!(await deps.ledger.begin(sid, { conversationSid, tenantId, at: deps.now() }))) {
        return { outcome: "duplicate", ...base, conversationSid };
      }
      const posted = await postOnce(
        deps,
        conversationSid,
        {
          author: "system",
          body: outboundBody(sent?.body, entry?.template),
          attributes: outboundAttributes({
            messagingMessageSid: sid,
            channel: key.channel,
            template: entry?.template,
            status,
            errorCode: callback.errorCode,
          }),
        },
        mirroredCopy(sid),
      );
      if (posted.kind === "posted") {
        await deps.ledger.complete(sid, {
          conversationSid,
          messageSid: posted.messageSid,
          at: deps.now(),
          status: { status, errorCode: callback.errorCode },
        });
        await bindAfterPost(deps, customer, thread);
        await deps.registry.touch({ conversationSid, tenantId, at: envelope.receivedAt });
        return { outcome: "outbound-mirrored", ...base, conversationSid };
      }
      await noteUnwritable(deps, conversationSid, posted.kind, tenantId);
    } else {
      await noteUnwritable(deps, conversationSid, "thread-gone", tenantId);
    }
    thread = await resolveThread(deps, customer, conversationSid);
  }
  throw new ThreadUnavailableError("the customer's thread kept closing while mirroring an outbound message");
};
