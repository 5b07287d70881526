// Middy middleware for the webhook: times the request, writes its one structured log line (with EMF
// metrics), and is the last guard that turns an unexpected error into a 500 instead of a thrown
// invocation error (API Gateway would answer 500 anyway, but without our log line).
import type { MiddlewareObj } from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { toErrorResponse } from "../app/http.ts";
import type { WebhookResult } from "../app/webhook.ts";
import { MetricNames } from "../metrics.ts";
import { toApiGatewayResult } from "./api-gateway.ts";
import type { Metric, Telemetry } from "./telemetry.ts";

/** The handler leaves its result here for the middleware to log. */
export type WebhookContext = Context & { webhookResult?: WebhookResult };

const metricsFor = (result: WebhookResult | undefined, durationMs: number): Metric[] => [
  { name: MetricNames.webhookRequests, value: 1 },
  { name: MetricNames.duplicatesDropped, value: result?.outcome.startsWith("duplicate") ? 1 : 0 },
  { name: MetricNames.webhookRejected, value: result?.outcome === "rejected" ? 1 : 0 },
  { name: MetricNames.webhookLatency, value: durationMs, unit: "Milliseconds" },
];

export const webhookTelemetry = (
  log: Telemetry,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, WebhookContext> => {
  const started = new WeakMap<object, number>();
  const emit = (context: WebhookContext, status: number, error?: Error) => {
    const durationMs =
      Math.round((performance.now() - (started.get(context) ?? performance.now())) * 100) / 100;
    const result = context.webhookResult;
    log.emit(
      {
        msg: "webhook",
        requestId: context.awsRequestId,
        status,
        route: result?.route,
        kind: result?.kind,
        eventId: result?.eventId,
        outcome: result?.outcome ?? "error",
        reason: result?.reason ?? error?.message,
        errorName: error?.name,
        idempotencyToken: result?.idempotencyToken,
        webhookSid: result?.webhookSid,
        durationMs,
      },
      metricsFor(result, durationMs),
    );
  };
  return {
    before: (request) => {
      started.set(request.context, performance.now());
    },
    after: (request) => {
      emit(request.context, request.response?.statusCode ?? 0);
    },
    onError: (request) => {
      const response = toErrorResponse(request.error);
      emit(request.context, response.statusCode, request.error ?? undefined);
      request.response = toApiGatewayResult(response);
    },
  };
};
