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
import { logComplianceBatch } from "../../lib/adapters/record-log.ts";
import { sqsEventQueue } from "../../lib/adapters/sqs-event-queue.ts";
import { telemetry } from "../../lib/adapters/telemetry.ts";
import { twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import { type ComplianceDeps, processConsentBatch } from "../../lib/app/compliance.ts";
import { parseComplianceConfig } from "../../lib/config/compliance-config.ts";
import { processEnv } from "../../lib/config/env.ts";
import { parseTwilioRestConfig } from "../../lib/config/twilio-config.ts";

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

export const handler = middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
  const batch = await processConsentBatch(deps, event.Records, () => context.getRemainingTimeInMillis());
  logComplianceBatch(log, context.awsRequestId, batch);
  return { batchItemFailures: batch.batchItemFailures };
});
