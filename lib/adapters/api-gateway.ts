// Adapts API Gateway HTTP API (payload 2.0) events to the framework-neutral HttpRequest and back.
// Form bodies arrive base64-encoded (isBase64Encoded) and are decoded to the exact bytes Twilio sent.
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { HttpRequest, HttpResponse } from "../app/http.ts";

export const fromApiGatewayEvent = (event: APIGatewayProxyEventV2): HttpRequest => {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  const raw = event.body ?? "";
  return {
    method: event.requestContext?.http?.method ?? "",
    rawPath: event.rawPath ?? "",
    rawQueryString: event.rawQueryString ?? "",
    headers,
    body: Buffer.from(raw, event.isBase64Encoded ? "base64" : "utf8"),
    receivedAt: event.requestContext?.timeEpoch ?? Date.now(),
  };
};

export const toApiGatewayResult = (response: HttpResponse): APIGatewayProxyStructuredResultV2 => ({
  statusCode: response.statusCode,
  headers: { ...response.headers },
  body: response.body ?? "",
  isBase64Encoded: false,
});
