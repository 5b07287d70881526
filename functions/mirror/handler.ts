// Composition root of the mirror Lambda: reads config once, builds adapters at module scope, and exports
// `handler`, which runs the mirror use case over a FIFO batch and reports partial failures
// (ReportBatchItemFailures): a failed record and the later records of its message group are retried by
// SQS and, after maxReceiveCount, land in the DLQ. Each failure is logged with its reason.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { dynamoMirrorLedger, dynamoThreadMappings } from "../../lib/adapters/conversation-mapping.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import { twilioMirrorPort } from "../../lib/adapters/mirror-twilio.ts";
import { maskAddress, telemetry } from "../../lib/adapters/telemetry.ts";
import { twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import {
  isPermanentMirrorFailure,
  type MirrorDeps,
  type MirrorResult,
  mirrorEvent,
} from "../../lib/app/mirror.ts";
import { processFifoBatch } from "../../lib/app/sqs-batch.ts";
import { processEnv } from "../../lib/config/env.ts";
import { parseMirrorConfig } from "../../lib/config/mirror-config.ts";
import { TwilioApiError } from "../../lib/domain/twilio-errors.ts";

const config = parseMirrorConfig(processEnv());
const dynamodb = new DynamoDBClient({});
const table = config.conversationsTableName;

const deps: MirrorDeps = {
  twilio: twilioMirrorPort(twilioClientProvider(config.twilio)),
  threads: dynamoThreadMappings(dynamodb, table),
  ledger: dynamoMirrorLedger(dynamodb, table),
  registry: dynamoConversationRegistry(dynamodb, table),
  tenants: config.tenants,
  settingsFor: config.settingsFor,
  now: Date.now,
};

const log = telemetry({ functionName: "mirror", namespace: config.metricsNamespace });

/** Error text can quote phone numbers (e.g. Twilio 21211); logs keep them masked. */
const masked = (text: string): string =>
  text.replace(/(?:[a-z]+:)?\+?\d{6,}/g, (address) => maskAddress(address) ?? "••••");

const failureReason = (error: unknown) => ({
  error: error instanceof Error ? error.name : "Error",
  reason: masked(error instanceof Error ? error.message : String(error)),
  ...(error instanceof TwilioApiError ? { twilioCode: error.code, twilioStatus: error.status } : {}),
  permanent: isPermanentMirrorFailure(error),
});

const mirroredOutcomes: ReadonlySet<MirrorResult["outcome"]> = new Set(["mirrored", "outbound-mirrored"]);

export const handler = middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
  const invocation: MirrorDeps = {
    ...deps,
    retry: { remainingMs: () => context.getRemainingTimeInMillis() },
  };
  const results = new Map<string, MirrorResult>();
  const batch = await processFifoBatch(event.Records, async (envelope, record) => {
    results.set(record.messageId, await mirrorEvent(invocation, envelope));
  });
  let mirrored = 0;
  let notPosted = 0;
  let failed = 0;
  for (const outcome of batch.outcomes) {
    if (outcome.ok) {
      const result = results.get(outcome.messageId);
      if (result !== undefined && mirroredOutcomes.has(result.outcome)) mirrored += 1;
      if (result?.outcome === "outbound-not-posted") notPosted += 1;
      log.emit({
        messageId: outcome.messageId,
        eventId: outcome.eventId,
        outcome: result?.outcome,
        reason: result?.reason,
        tenantId: result?.tenantId,
        conversationSid: result?.conversationSid,
        address: maskAddress(result?.address),
      });
      continue;
    }
    failed += 1;
    log.emit({
      level: "error",
      messageId: outcome.messageId,
      eventId: outcome.eventId,
      // Skipped: not attempted, because an earlier record of its FIFO group failed and it must not overtake.
      skipped: outcome.skipped,
      ...(outcome.skipped
        ? { reason: "earlier record of the message group failed" }
        : failureReason(outcome.error)),
    });
  }
  log.emit({ records: event.Records.length }, [
    { name: "MessagesMirrored", value: mirrored },
    // Outbound messages kept out of a bound customer's thread (listed on the conversation instead).
    { name: "OutboundNotPosted", value: notPosted },
    { name: "MirrorFailures", value: failed },
  ]);
  return { batchItemFailures: batch.batchItemFailures };
});
