// Outbound delivery statuses onto the thread, forward only: on the attributes of the message that
// stands for the send (our mirrored copy, or `sendOutbound`'s own post), or, for a send that was
// summarized instead of posted, in the conversation's `outboundNotMirrored` list.
import {
  type MirrorChannel,
  mergeOutboundSummary,
  type OutboundStatus,
  outboundAttributes,
  supersedes,
} from "../../domain/mirror.ts";
import type { LedgerEntry, MirrorDeps, MirrorResult, UpdateResult } from "./ports.ts";
import { idempotent } from "./twilio-retry.ts";

type StatusUpdate = {
  readonly sid: string;
  readonly status: OutboundStatus;
  readonly errorCode: string | undefined;
};

/** A ledger entry with a recorded status, for a send that went into (or was listed on) a thread. */
type RecordedEntry = LedgerEntry & { readonly status: OutboundStatus; readonly conversationSid: string };

/** A ledger entry with a recorded status that points at a thread message. */
type AppliedEntry = RecordedEntry & { readonly messageSid: string };

type ResultBase = Omit<MirrorResult, "outcome">;

/**
 * Records `update` in the ledger (monotonic) and returns the entry when the thread shows an older
 * status than the highest one recorded; otherwise the `status-stale` result. `usable` narrows the entry
 * to what the caller needs to write. Compared with what the thread shows, not with this callback: a
 * retry after a failed update must still apply the highest status recorded.
 */
const advance = async <T extends RecordedEntry>(
  deps: MirrorDeps,
  update: StatusUpdate,
  base: ResultBase,
  usable: (entry: LedgerEntry) => T | undefined,
): Promise<{ readonly entry: T } | { readonly stale: MirrorResult }> => {
  const recorded = await deps.ledger.advanceStatus(update.sid, {
    status: update.status,
    errorCode: update.errorCode,
    at: deps.now(),
  });
  const entry = recorded === undefined ? undefined : usable(recorded);
  if (entry === undefined) return { stale: { outcome: "status-stale", ...base } };
  if (entry.appliedStatus !== undefined && !supersedes(entry.status, entry.appliedStatus)) {
    return { stale: { outcome: "status-stale", ...base, conversationSid: entry.conversationSid } };
  }
  return { entry };
};

const onThreadMessage = (entry: LedgerEntry): AppliedEntry | undefined =>
  entry.status === undefined || entry.conversationSid === undefined || entry.messageSid === undefined
    ? undefined
    : {
        ...entry,
        status: entry.status,
        conversationSid: entry.conversationSid,
        messageSid: entry.messageSid,
      };

const onConversation = (entry: LedgerEntry): RecordedEntry | undefined =>
  entry.status === undefined || entry.conversationSid === undefined
    ? undefined
    : { ...entry, status: entry.status, conversationSid: entry.conversationSid };

/**
 * Records `update` in the ledger (monotonic) and brings the thread message's attributes up to the
 * highest status recorded. `render` writes the whole attributes from the ledger entry, because a
 * mirrored copy and `sendOutbound`'s own post carry different ones.
 */
export const applyStatus = async (
  deps: MirrorDeps,
  update: StatusUpdate,
  render: (entry: AppliedEntry) => string,
  base: ResultBase,
): Promise<MirrorResult> => {
  const advanced = await advance(deps, update, base, onThreadMessage);
  if ("stale" in advanced) return advanced.stale;
  const applied = advanced.entry;
  const updated = await idempotent(deps, () =>
    deps.twilio.updateMessageAttributes(applied.conversationSid, applied.messageSid, render(applied)),
  );
  // A closed thread is final: record the status as applied so retries stop; the ledger keeps it.
  await deps.ledger.markApplied(update.sid, applied.status, deps.now());
  return {
    outcome: updated === "updated" ? "status-applied" : "status-unapplied",
    ...base,
    conversationSid: applied.conversationSid,
  };
};

/** `render` for our mirrored copy of a Messaging-API send. */
export const mirroredCopyAttributes =
  (messagingMessageSid: string, channel: MirrorChannel) =>
  (entry: AppliedEntry): string =>
    outboundAttributes({
      messagingMessageSid,
      channel,
      template: entry.template,
      status: entry.status,
      errorCode: entry.errorCode,
    });

/**
 * `applyStatus` for a message that was summarized instead of posted: the highest status recorded goes
 * into the conversation's `outboundNotMirrored` list. Unreadable or full attributes are left alone
 * (`status-unapplied`); the ledger still has the status.
 */
export const applySummary = async (
  deps: MirrorDeps,
  update: StatusUpdate,
  at: number,
  base: ResultBase,
): Promise<MirrorResult> => {
  const advanced = await advance(deps, update, base, onConversation);
  if ("stale" in advanced) return advanced.stale;
  const { conversationSid, status, errorCode, template } = advanced.entry;
  const current = await idempotent(deps, () => deps.twilio.threadAttributes(conversationSid));
  let applied: UpdateResult | "unmergeable" = "gone";
  if (current !== undefined) {
    const merged = mergeOutboundSummary(current, {
      messagingMessageSid: update.sid,
      status,
      errorCode,
      template,
      at,
    });
    // Read-modify-write: one customer's callbacks are serialised by their FIFO group, so only a writer
    // outside the mirror (an agent's tool editing the attributes) can race this; Twilio has no ETag here.
    applied =
      merged.kind === "merged"
        ? await idempotent(deps, () => deps.twilio.updateThreadAttributes(conversationSid, merged.attributes))
        : merged.kind === "unchanged"
          ? "updated"
          : "unmergeable";
  }
  await deps.ledger.markApplied(update.sid, status, deps.now());
  return { outcome: applied === "updated" ? "status-applied" : "status-unapplied", ...base, conversationSid };
};
