// The mirror use case's entry point: keeps one Conversations thread per (tenant, channel, customer
// address) holding everything that arrives or leaves through Programmable Messaging, and keeps the
// conversation registry current from every Conversations event. Input is one queue envelope at a time;
// FIFO message groups (`addr:<customer>` for Messaging, `conv:<CH>` for Conversations) mean one
// customer's records arrive here one after another, but every step is still safe under concurrency and
// redelivery. A customer bound in a thread receives every message posted there, so nothing may post a
// copy of something they already received (README.md "Mirroring", "Never twice"); the project's own send
// path, which keeps to the same rule, is `sendOutbound` in ./send.ts.
import { InvalidMirrorInputError } from "../../domain/mirror.ts";
import type { Envelope } from "../../domain/queue-envelope.ts";
import { classifyTwilioFailure } from "../../domain/twilio-errors.ts";
import { UngatedInboundError } from "../errors.ts";
import { processFifoBatch, type QueueRecord, type RecordOutcome } from "../sqs-batch.ts";
import { recordConversationEvent } from "./conversation-events.ts";
import { mirrorInbound } from "./inbound.ts";
import { mirrorStatus } from "./outbound.ts";
import type { MirrorDeps, MirrorOutcome, MirrorResult } from "./ports.ts";

/** Handles one queue record. Throws when the record must be retried (and, in the end, dead-lettered). */
export const mirrorEvent = (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  switch (envelope.kind) {
    case "messaging.inbound":
      return mirrorInbound(deps, envelope);
    case "messaging.status":
      return mirrorStatus(deps, envelope);
    default:
      return recordConversationEvent(deps, envelope);
  }
};

/** Errors that no retry can fix; the batch still reports them so they reach the DLQ with a reason. */
export const isPermanentMirrorFailure = (error: unknown): boolean =>
  error instanceof UngatedInboundError ||
  error instanceof InvalidMirrorInputError ||
  classifyTwilioFailure(error) !== "retryable";

// ---- Batch ------------------------------------------------------------------------------------------

export type MirrorRecordReport = RecordOutcome & { readonly result?: MirrorResult };

export type MirrorBatchResult = {
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly records: readonly MirrorRecordReport[];
  /** Records that put a message into a thread (inbound or outbound). */
  readonly mirrored: number;
  /** Outbound messages kept out of a bound customer's thread (listed on the conversation instead). */
  readonly notPosted: number;
  readonly failed: number;
};

const mirroredOutcomes: ReadonlySet<MirrorOutcome> = new Set(["mirrored", "outbound-mirrored"]);

/**
 * One Lambda invocation's batch: FIFO per message group (a failure holds back the rest of its group),
 * failed records reported alone in `batchItemFailures` so SQS redelivers them and, after
 * `maxReceiveCount`, moves them to the DLQ.
 */
export const mirrorBatch = async (
  deps: MirrorDeps,
  records: readonly QueueRecord[],
): Promise<MirrorBatchResult> => {
  const results = new Map<string, MirrorResult>();
  const batch = await processFifoBatch(records, async (envelope, record) => {
    results.set(record.messageId, await mirrorEvent(deps, envelope));
  });
  const reports = batch.outcomes.map((outcome): MirrorRecordReport => {
    const result = results.get(outcome.messageId);
    return result === undefined ? outcome : { ...outcome, result };
  });
  const count = (counts: (report: MirrorRecordReport) => boolean) => reports.filter(counts).length;
  return {
    batchItemFailures: batch.batchItemFailures,
    records: reports,
    mirrored: count((report) => report.result !== undefined && mirroredOutcomes.has(report.result.outcome)),
    notPosted: count((report) => report.result?.outcome === "outbound-not-posted"),
    failed: count((report) => !report.ok),
  };
};
