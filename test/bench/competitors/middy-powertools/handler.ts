// Competitor (b): the webhook a user would write from the Middy and Powertools docs — the twilio SDK's
// validateRequest in a first `before` middleware (it must see the form before the body parser replaces
// `event.body`), @middy/http-urlencode-body-parser, Powertools' makeHandlerIdempotent on a
// DynamoDBPersistenceLayer keyed on the MessageSid, then SendMessage to the same FIFO queue as ours.
// Bundled with the same `bundle()` as our functions and run by the same cold/warm protocol.
import { IdempotencyConfig } from "@aws-lambda-powertools/idempotency";
import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import { makeHandlerIdempotent } from "@aws-lambda-powertools/idempotency/middleware";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import middy, { type MiddlewareObj } from "@middy/core";
import httpUrlencodeBodyParser from "@middy/http-urlencode-body-parser";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import twilio from "twilio";

const authToken = process.env.TWILIO_AUTH_TOKEN ?? "";
const publicBaseUrl = process.env.PUBLIC_WEBHOOK_BASE_URL ?? "";
const queueUrl = process.env.CONSENT_QUEUE_URL;
const sqs = new SQSClient({});

const persistenceStore = new DynamoDBPersistenceLayer({
  tableName: process.env.IDEMPOTENCY_TABLE_NAME ?? "",
});
const idempotency = new IdempotencyConfig({
  eventKeyJmesPath: "body.MessageSid",
  expiresAfterSeconds: 7 * 24 * 60 * 60,
  throwOnNoIdempotencyKey: true,
});

type Event = Omit<APIGatewayProxyEventV2, "body"> & { body: unknown };
type Result = APIGatewayProxyStructuredResultV2;

const twiml = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/** Runs before the body parser: Twilio signs the form parameters, so they are read from the raw body. */
const twilioSignature = (): MiddlewareObj<Event, Result> => ({
  before: (request) => {
    const { body, isBase64Encoded, headers, rawPath, rawQueryString } = request.event;
    const raw =
      typeof body === "string" ? Buffer.from(body, isBase64Encoded ? "base64" : "utf8").toString() : "";
    const params = Object.fromEntries(new URLSearchParams(raw));
    const url = `${publicBaseUrl}${rawPath}${rawQueryString ? `?${rawQueryString}` : ""}`;
    if (!twilio.validateRequest(authToken, headers["x-twilio-signature"] ?? "", url, params)) {
      return { statusCode: 403, body: "" };
    }
    return undefined;
  },
});

const stringField = (body: unknown, name: string): string => {
  const value = typeof body === "object" && body !== null ? Reflect.get(body, name) : undefined;
  return typeof value === "string" ? value : "";
};

export const handler = middy<Event, Result>()
  .use(twilioSignature())
  .use(httpUrlencodeBodyParser())
  .use(makeHandlerIdempotent({ persistenceStore, config: idempotency }))
  .handler(async (event) => {
    const messageSid = stringField(event.body, "MessageSid");
    const eventId = `msg-in:${messageSid}`;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({
          v: 1,
          eventId,
          kind: "messaging.inbound",
          receivedAt: Date.now(),
          params: event.body,
        }),
        MessageGroupId: `addr:${stringField(event.body, "From")}`,
        MessageDeduplicationId: eventId,
      }),
    );
    return { statusCode: 200, headers: { "content-type": "text/xml" }, body: twiml };
  });
