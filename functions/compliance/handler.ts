// Composition root of the compliance Lambda (consumer of the consent FIFO queue): reads config once,
// builds the DynamoDB, Twilio and SQS adapters at module scope, and exports `handler`, which runs the
// batch through the compliance use case and reports failed records alone in `batchItemFailures`.
// A record that keeps failing (including a malformed one) is redelivered until SQS moves it to the DLQ
// after `maxReceiveCount`; each failure is logged with its reason and class.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { twilioConsentMessaging } from "../../lib/adapters/compliance-twilio.ts";
import { dynamoConsentStore } from "../../lib/adapters/consent-store.ts";
import { sqsEventQueue } from "../../lib/adapters/sqs-event-queue.ts";
import { maskAddress, telemetry } from "../../lib/adapters/telemetry.ts";
import { twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import { type ComplianceDeps, processConsentBatch, type RecordReport } from "../../lib/app/compliance.ts";
import { isPoison } from "../../lib/app/sqs-batch.ts";
import { parseComplianceConfig } from "../../lib/config/compliance-config.ts";
import { processEnv } from "../../lib/config/env.ts";
import { parseTwilioRestConfig } from "../../lib/config/twilio-config.ts";
import { InvalidConsentEventError } from "../../lib/domain/consent.ts";
import { classifyTwilioFailure, TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import { Queues } from "../../lib/resources.ts";

const env = processEnv();
const config = parseComplianceConfig(env);

const deps: ComplianceDeps = {
  tenants: config.tenants,
  settings: config.settings,
  store: dynamoConsentStore({ client: new DynamoDBClient({}), tableName: config.consentTableName }),
  twilio: twilioConsentMessaging(twilioClientProvider(parseTwilioRestConfig(env))),
  // This function only ever sends to the mirror queue (its IAM grant says the same); the consent URL
  // is deliberately empty so a wrong destination fails instead of looping back into our own queue.
  queue: sqsEventQueue(new SQSClient({}), { consent: "", mirror: config.mirrorQueueUrl }),
  now: Date.now,
  retry: { attempts: 4, baseDelayMs: 200, maxDelayMs: 3_000 },
};

const log = telemetry({ functionName: "compliance", namespace: config.metricsNamespace });

/** Twilio error messages can quote a phone number ("The 'To' number +1… is not valid"); logs get it masked. */
const redactNumbers = (text: string): string =>
  text.replace(/(?:whatsapp:)?\+?\d{6,15}/g, (number) => maskAddress(number) ?? "••••");

const failureClass = (error: unknown): string => {
  if (isPoison(error) || error instanceof InvalidConsentEventError) return "poison";
  if (error instanceof TwilioApiError) return classifyTwilioFailure(error);
  return error instanceof Error ? error.name : "unknown";
};

const logRecord = (requestId: string, record: RecordReport): void => {
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
      [{ name: "ComplianceActions", value: report?.actions.length ?? 0 }],
    );
    return;
  }
  const error = record.error;
  const kind = failureClass(error);
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
      errorName: error instanceof Error ? error.name : undefined,
      reason: record.skipped
        ? "an earlier record of the same message group failed"
        : redactNumbers(error instanceof Error ? error.message : String(error)),
      twilioCode: error instanceof TwilioApiError ? error.code : undefined,
    },
    [{ name: "ComplianceFailures", value: record.skipped ? 0 : 1 }],
  );
};

export const handler = middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
  const result = await processConsentBatch(deps, event.Records, () => context.getRemainingTimeInMillis());
  for (const record of result.records) logRecord(context.awsRequestId, record);
  return { batchItemFailures: result.batchItemFailures };
});
