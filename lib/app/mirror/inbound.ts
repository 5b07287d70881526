// Inbound Messaging: a customer's SMS/WhatsApp message, already through the compliance gate, goes into
// their thread once: recognised if Twilio captured it there itself (a bound pair), else posted by us,
// with the thread replaced if it closes under us.
import { inboundAttributes, inboundBody, parseInboundMessage } from "../../domain/mirror.ts";
import type { Envelope } from "../../domain/queue-envelope.ts";
import { tenantFor } from "../../domain/tenants.ts";
import { ThreadUnavailableError, UngatedInboundError } from "../errors.ts";
import type { LedgerEntry, MirrorDeps, MirrorOutcome, MirrorResult, ThreadMapping } from "./ports.ts";
import { completeFromCopy, mirroredCopy, postOnce, recentMessages, settleOnTwilioCopy } from "./posting.ts";
import { customerOf, MaxThreadReplacements, noteUnwritable, resolveThread } from "./threads.ts";

/** Clock skew between the webhook function (receivedAt) and this one (boundAt). */
const CaptureSkewMs = 5_000;

/** Whether Twilio may have put this message into the thread itself (the pair was bound when it came). */
const mayBeCaptured = (thread: ThreadMapping, receivedAt: number): boolean =>
  thread.bound && receivedAt >= thread.boundAt - CaptureSkewMs;

const isSettled = (entry: LedgerEntry | undefined): boolean =>
  entry?.state === "posted" ||
  entry?.state === "captured" ||
  entry?.state === "native" ||
  entry?.state === "summarized";

export const mirrorInbound = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  if (envelope.forwardedBy !== "compliance") {
    throw new UngatedInboundError("inbound message reached the mirror without passing the compliance gate");
  }
  const message = parseInboundMessage(envelope.params);
  const sid = message.messagingMessageSid;
  const tenantId = tenantFor(deps.tenants, {
    to: message.to,
    messagingServiceSid: message.messagingServiceSid,
  });
  const customer = customerOf(
    deps,
    tenantId,
    message.from,
    message.to,
    message.messagingServiceSid,
    envelope.receivedAt,
  );
  const result = (outcome: MirrorOutcome, conversationSid?: string): MirrorResult => ({
    outcome,
    tenantId,
    address: message.from,
    ...(conversationSid === undefined ? {} : { conversationSid }),
  });

  let entry = await deps.ledger.get(sid);
  if (isSettled(entry)) return result("duplicate", entry?.conversationSid);
  let thread = await resolveThread(deps, customer);
  for (let replacements = 0; replacements <= MaxThreadReplacements; replacements += 1) {
    const conversationSid = thread.conversationSid;
    const touch = () => deps.registry.touch({ conversationSid, tenantId, at: envelope.receivedAt });
    if (entry?.state === "pending") {
      // An earlier attempt got as far as posting: did the post land before it died?
      const postedTo = entry.conversationSid ?? conversationSid;
      if (await completeFromCopy(deps, sid, postedTo)) return result("duplicate", postedTo);
    }
    if (mayBeCaptured(thread, envelope.receivedAt)) {
      const recent = await recentMessages(deps, conversationSid);
      const captured =
        recent !== undefined &&
        (await settleOnTwilioCopy(deps, sid, { state: "captured", conversationSid }, recent, {
          author: (author) => author === message.from,
          body: message.body,
          mediaCount: message.media.length,
          around: envelope.receivedAt,
        }));
      if (captured) {
        await touch();
        return result("already-in-thread", conversationSid);
      }
    }
    if (!(await deps.ledger.begin(sid, { conversationSid, tenantId, at: deps.now() }))) {
      return result("duplicate", conversationSid);
    }
    const posted = await postOnce(
      deps,
      conversationSid,
      {
        author: message.from,
        body: inboundBody(message),
        attributes: inboundAttributes({
          message,
          channel: customer.key.channel,
          receivedAt: envelope.receivedAt,
        }),
      },
      mirroredCopy(sid),
    );
    if (posted.kind === "posted") {
      await deps.ledger.complete(sid, { conversationSid, messageSid: posted.messageSid, at: deps.now() });
      await touch();
      return result("mirrored", conversationSid);
    }
    // Closed or deleted under us: nothing was posted there. Replace the thread and post again.
    await noteUnwritable(deps, conversationSid, posted.kind, tenantId);
    thread = await resolveThread(deps, customer, conversationSid);
    entry = undefined;
  }
  throw new ThreadUnavailableError("the customer's thread kept closing while mirroring");
};
