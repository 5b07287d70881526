// Composition root of the webhook Lambda: reads config once, builds adapters at module scope, and
// exports `handler`, a middy pipeline around the webhook use case.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import middy from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { fromApiGatewayEvent, toApiGatewayResult } from "../../lib/adapters/api-gateway.ts";
import {
  cachedTwilioSecret,
  secretAuthTokens,
  secretsManagerReader,
  staticAuthTokens,
} from "../../lib/adapters/auth-tokens.ts";
import { consentPreEventPolicy } from "../../lib/adapters/consent-pre-event-policy.ts";
import { consentStateReader } from "../../lib/adapters/consent-store.ts";
import { dynamoDedupeStore } from "../../lib/adapters/dynamodb-dedupe-store.ts";
import { sqsEventQueue } from "../../lib/adapters/sqs-event-queue.ts";
import { telemetry } from "../../lib/adapters/telemetry.ts";
import { type WebhookContext, webhookTelemetry } from "../../lib/adapters/webhook-telemetry.ts";
import { allowAllPreEvents } from "../../lib/app/ports.ts";
import { handleWebhook, type WebhookDeps } from "../../lib/app/webhook.ts";
import { processEnv } from "../../lib/config/env.ts";
import { parseWebhookConfig } from "../../lib/config/webhook-config.ts";

const config = parseWebhookConfig(processEnv());

const tokens =
  config.tokens.kind === "env"
    ? staticAuthTokens(config.tokens)
    : secretAuthTokens(
        cachedTwilioSecret({
          read: secretsManagerReader(config.tokens.secretArn),
          now: Date.now,
          maxAgeMs: 5 * 60_000,
          minRefreshIntervalMs: 30_000,
        }),
      );

const dynamodb = new DynamoDBClient({});
const log = telemetry({ functionName: "webhook", namespace: config.metricsNamespace });

const deps: WebhookDeps = {
  publicBaseUrl: config.publicBaseUrl,
  maxBodyBytes: config.maxBodyBytes,
  tokens,
  dedupe: dynamoDedupeStore({
    client: dynamodb,
    tableName: config.dedupeTableName,
    ttlSeconds: config.dedupeTtlSeconds,
  }),
  queue: sqsEventQueue(new SQSClient({}), config.queueUrls),
  preEvents:
    config.consentTableName === undefined
      ? allowAllPreEvents
      : consentPreEventPolicy({
          reader: consentStateReader({ client: dynamodb, tableName: config.consentTableName }),
          tenants: config.tenants,
          onError: (error) =>
            log.emit({
              level: "error",
              msg: "consent-check-failed",
              errorName: error instanceof Error ? error.name : undefined,
              reason: error instanceof Error ? error.message : String(error),
            }),
        }),
  resendWindowMs: 4 * 60_000,
};

export const handler = middy<
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Error,
  WebhookContext
>()
  .use(webhookTelemetry(log))
  .handler(async (event, context) => {
    const result = await handleWebhook(deps, fromApiGatewayEvent(event));
    context.webhookResult = result;
    return toApiGatewayResult(result.response);
  });
