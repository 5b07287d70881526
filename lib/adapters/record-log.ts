// The log lines of the queue consumers (compliance, mirror): one structured line per SQS record saying
// what became of it, plus the batch metrics. Both consumers mask addresses the same way, including
// phone numbers quoted in error text, and word a record held back behind its group's failure alike.
import { type ConsentBatchResult, complianceFailureClass, type RecordReport } from "../app/compliance.ts";
import { isPermanentMirrorFailure, type MirrorBatchResult } from "../app/mirror/index.ts";
import { maskAddress } from "../domain/privacy.ts";
import { TwilioApiError } from "../domain/twilio-errors.ts";
import { MetricNames } from "../metrics.ts";
import { Queues } from "../resources.ts";
import type { Telemetry } from "./telemetry.ts";

/** Error text can quote phone numbers (Twilio 21211: "The 'To' number +1… is not valid"); logs keep them masked. */
export const redactAddresses = (text: string): string =>
  text.replace(/(?:[a-z]+:)?\+?\d{6,}/g, (address) => maskAddress(address) ?? "••••");

/** Not attempted: an earlier record of its FIFO group failed, and it must not overtake that one. */
export const HeldBackReason = "an earlier record of the same message group failed";

/** What a failed record's log line says about its error. */
export const failureFields = (error: unknown) => ({
  errorName: error instanceof Error ? error.name : undefined,
  reason: redactAddresses(error instanceof Error ? error.message : String(error)),
  twilioCode: error instanceof TwilioApiError ? error.code : undefined,
  twilioStatus: error instanceof TwilioApiError ? error.status : undefined,
});

const logComplianceRecord = (log: Telemetry, requestId: string, record: RecordReport): void => {
  const { report } = record;
  if (record.ok) {
    log.emit(
      {
        msg: "compliance-record",
        requestId,
        messageId: record.messageId,
        eventId: record.eventId,
        outcome: report?.outcome,
        reason: report?.reason,
        tenant: report?.tenant,
        channel: report?.channel,
        address: maskAddress(report?.address),
        intent: report?.intent,
        keyword: report?.keyword,
        decision: report?.decision,
        actions: report?.actions,
      },
      [{ name: MetricNames.complianceActions, value: report?.actions.length ?? 0 }],
    );
    return;
  }
  const kind = complianceFailureClass(record.error);
  const failure = failureFields(record.error);
  log.emit(
    {
      // 20003 means our Twilio credentials are wrong: every record will fail until someone fixes them.
      level: kind === "configuration" ? "error" : "warn",
      msg: record.skipped ? "compliance-record-held-back" : "compliance-record-failed",
      requestId,
      messageId: record.messageId,
      eventId: record.eventId,
      receiveCount: record.receiveCount,
      nextStop: record.receiveCount >= Queues.consent.maxReceiveCount ? "dead-letter-queue" : "redelivery",
      failureClass: kind,
      errorName: failure.errorName,
      reason: record.skipped ? HeldBackReason : failure.reason,
      twilioCode: failure.twilioCode,
    },
    [{ name: MetricNames.complianceFailures, value: record.skipped ? 0 : 1 }],
  );
};

export const logComplianceBatch = (log: Telemetry, requestId: string, batch: ConsentBatchResult): void => {
  for (const record of batch.records) logComplianceRecord(log, requestId, record);
};

export const logMirrorBatch = (log: Telemetry, batch: MirrorBatchResult): void => {
  for (const record of batch.records) {
    if (record.ok) {
      const { result } = record;
      log.emit({
        messageId: record.messageId,
        eventId: record.eventId,
        outcome: result?.outcome,
        reason: result?.reason,
        tenantId: result?.tenantId,
        conversationSid: result?.conversationSid,
        address: maskAddress(result?.address),
      });
      continue;
    }
    const failure = failureFields(record.error);
    log.emit({
      level: "error",
      messageId: record.messageId,
      eventId: record.eventId,
      skipped: record.skipped,
      ...(record.skipped
        ? { reason: HeldBackReason }
        : {
            error: failure.errorName ?? "Error",
            reason: failure.reason,
            twilioCode: failure.twilioCode,
            twilioStatus: failure.twilioStatus,
            permanent: isPermanentMirrorFailure(record.error),
          }),
    });
  }
  log.emit({ records: batch.records.length }, [
    { name: MetricNames.messagesMirrored, value: batch.mirrored },
    { name: MetricNames.outboundNotPosted, value: batch.notPosted },
    { name: MetricNames.mirrorFailures, value: batch.failed },
  ]);
};
