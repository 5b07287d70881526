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
import { logMirrorBatch } from "../../lib/adapters/record-log.ts";
import { telemetry } from "../../lib/adapters/telemetry.ts";
import { twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import { mirrorBatch } from "../../lib/app/mirror/index.ts";
import type { MirrorDeps } from "../../lib/app/mirror/ports.ts";
import { processEnv } from "../../lib/config/env.ts";
import { parseMirrorConfig } from "../../lib/config/mirror-config.ts";

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

export const handler = middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
  const batch = await mirrorBatch(
    { ...deps, retry: { remainingMs: () => context.getRemainingTimeInMillis() } },
    event.Records,
  );
  logMirrorBatch(log, batch);
  return { batchItemFailures: batch.batchItemFailures };
});
