// The built webhook bundle against real DynamoDB Local and fauxqs: verify, dedupe, hand off.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { GetItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { parseEnvelope } from "../../lib/domain/queue-envelope.ts";
import { freePort } from "../../lib/local/ports.ts";
import type { QueueName } from "../../lib/resources.ts";
import { loadBundle } from "../support/bundle.ts";
import { type LocalAws, localAws } from "../support/local-aws.ts";
import {
  apiGatewayEvent,
  conversationsEvent,
  inboundSms,
  statusCallback,
  TestAuthToken,
  TestPublicBaseUrl,
} from "../support/twilio-webhooks.ts";

type Handler = (event: APIGatewayProxyEventV2, context: object) => Promise<APIGatewayProxyStructuredResultV2>;

const context = () => ({
  awsRequestId: crypto.randomUUID(),
  functionName: "webhook",
  getRemainingTimeInMillis: () => 10_000,
});

let aws: LocalAws;
let handler: Handler;

const webhookEnv = (overrides: Record<string, string> = {}) => ({
  ...aws.awsEnv,
  PUBLIC_WEBHOOK_BASE_URL: TestPublicBaseUrl,
  DEDUPE_TABLE_NAME: aws.resources.tableNames.dedupe,
  CONSENT_QUEUE_URL: aws.resources.queueUrls.consent,
  MIRROR_QUEUE_URL: aws.resources.queueUrls.mirror,
  TWILIO_AUTH_TOKEN: TestAuthToken,
  ...overrides,
});

const loadHandler = async (overrides: Record<string, string> = {}): Promise<Handler> => {
  const module = await loadBundle<{ handler: Handler }>("webhook", webhookEnv(overrides));
  return module.handler;
};

/** Drains a queue and returns the bodies (visibility 0 is not allowed on FIFO; messages are deleted). */
const drain = async (queue: QueueName) => {
  const bodies: { body: string; groupId: string | undefined }[] = [];
  for (;;) {
    const result = await aws.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: aws.resources.queueUrls[queue],
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["MessageGroupId"],
      }),
    );
    const messages = result.Messages ?? [];
    if (messages.length === 0) return bodies;
    for (const message of messages) {
      bodies.push({ body: message.Body ?? "", groupId: message.Attributes?.MessageGroupId });
      const { DeleteMessageCommand } = await import("@aws-sdk/client-sqs");
      await aws.clients.sqs.send(
        new DeleteMessageCommand({
          QueueUrl: aws.resources.queueUrls[queue],
          ReceiptHandle: message.ReceiptHandle,
        }),
      );
    }
  }
};

const claimOf = async (eventId: string) =>
  (
    await aws.clients.dynamodb.send(
      new GetItemCommand({ TableName: aws.resources.tableNames.dedupe, Key: { eventId: { S: eventId } } }),
    )
  ).Item;

const dedupeItemCount = async () =>
  (
    await aws.clients.dynamodb.send(
      new ScanCommand({ TableName: aws.resources.tableNames.dedupe, Select: "COUNT" }),
    )
  ).Count ?? 0;

before(async () => {
  aws = await localAws();
  handler = await loadHandler();
});

describe("webhook intake", () => {
  test("an inbound SMS is acknowledged with empty TwiML and handed to the consent queue once", async () => {
    const params = inboundSms();
    const response = await handler(apiGatewayEvent({ path: "/twilio/messaging/inbound", params }), context());
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers?.["content-type"]), /^text\/xml/);
    assert.equal(response.body, '<?xml version="1.0" encoding="UTF-8"?><Response/>');
    const messages = await drain("consent");
    assert.equal(messages.length, 1);
    const envelope = parseEnvelope(messages[0]?.body ?? "");
    assert.equal(envelope.eventId, `msg-in:${params.MessageSid}`);
    assert.equal(envelope.kind, "messaging.inbound");
    assert.equal(envelope.params.Body, "Hello there");
    assert.equal(messages[0]?.groupId, "addr:+14155550100");
    assert.ok(await claimOf(envelope.eventId), "dedupe claim written");
    assert.deepEqual(await drain("mirror"), []);
  });

  test("an exact redelivery gets 200 and is not enqueued again", async () => {
    const event = apiGatewayEvent({ path: "/twilio/messaging/inbound", params: inboundSms() });
    assert.equal((await handler(event, context())).statusCode, 200);
    assert.equal((await handler({ ...event }, context())).statusCode, 200);
    assert.equal((await drain("consent")).length, 1);
  });

  test("the same event delivered 20 times at once is enqueued exactly once", async () => {
    const event = apiGatewayEvent({ path: "/twilio/messaging/inbound", params: inboundSms() });
    const responses = await Promise.all(Array.from({ length: 20 }, () => handler({ ...event }, context())));
    assert.deepEqual(
      responses.map((response) => response.statusCode),
      Array(20).fill(200),
    );
    assert.equal((await drain("consent")).length, 1);
  });

  test("a duplicate arriving after the resend window is acknowledged without any hand-off", async () => {
    const params = inboundSms();
    const first = apiGatewayEvent({
      path: "/twilio/messaging/inbound",
      params,
      timeEpoch: Date.now() - 10 * 60_000,
    });
    assert.equal((await handler(first, context())).statusCode, 200);
    assert.equal((await drain("consent")).length, 1);
    const late = apiGatewayEvent({ path: "/twilio/messaging/inbound", params });
    assert.equal((await handler(late, context())).statusCode, 200);
    assert.deepEqual(await drain("consent"), []);
  });

  test("a status callback goes to the mirror; a 21610 failure also to the consent gate", async () => {
    const delivered = statusCallback();
    const failed = statusCallback({ MessageStatus: "failed", ErrorCode: "21610" });
    for (const params of [delivered, failed]) {
      const response = await handler(
        apiGatewayEvent({ path: "/twilio/messaging/status", params }),
        context(),
      );
      assert.equal(response.statusCode, 204);
    }
    const mirror = (await drain("mirror")).map((message) => parseEnvelope(message.body).eventId);
    assert.deepEqual(
      mirror.sort(),
      [`msg-status:${delivered.MessageSid}:delivered`, `msg-status:${failed.MessageSid}:failed`].sort(),
    );
    const consent = (await drain("consent")).map((message) => parseEnvelope(message.body).eventId);
    assert.deepEqual(consent, [`msg-status:${failed.MessageSid}:failed`]);
  });

  test("the same message in two statuses is two events", async () => {
    const sent = statusCallback({ MessageStatus: "sent" });
    const delivered = { ...sent, MessageStatus: "delivered" };
    for (const params of [sent, delivered, sent]) {
      await handler(apiGatewayEvent({ path: "/twilio/messaging/status", params }), context());
    }
    assert.equal((await drain("mirror")).length, 2);
  });

  test("a Conversations post-event is grouped by conversation; an SMS author's message also reaches consent", async () => {
    const params = conversationsEvent("onMessageAdded", {
      MessageSid: "IM00000000000000000000000000000001",
      Author: "+14155550100",
      Body: "STOP",
      Index: "3",
    });
    const response = await handler(apiGatewayEvent({ path: "/twilio/conversations", params }), context());
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, "");
    const mirror = await drain("mirror");
    assert.equal(mirror.length, 1);
    assert.equal(mirror[0]?.groupId, `conv:${params.ConversationSid}`);
    assert.equal((await drain("consent")).length, 1);
  });

  test("a pre-event is answered 200 with an empty body and nothing is written", async () => {
    const before = await dedupeItemCount();
    const params = conversationsEvent("onParticipantAdd", { "MessagingBinding.Address": "+14155550100" });
    const response = await handler(apiGatewayEvent({ path: "/twilio/conversations", params }), context());
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, "");
    assert.equal(await dedupeItemCount(), before);
    assert.deepEqual(await drain("mirror"), []);
  });
});

describe("webhook rejections write nothing", () => {
  const rejected = async (event: APIGatewayProxyEventV2, status: number, reason: RegExp) => {
    const before = await dedupeItemCount();
    const response = await handler(event, context());
    assert.equal(response.statusCode, status);
    assert.match(String(response.body), reason);
    assert.equal(await dedupeItemCount(), before);
    assert.deepEqual(await drain("consent"), []);
    assert.deepEqual(await drain("mirror"), []);
  };

  test("invalid signature → 403", () =>
    rejected(
      apiGatewayEvent({
        path: "/twilio/messaging/inbound",
        params: inboundSms(),
        signature: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      }),
      403,
      /invalid X-Twilio-Signature/,
    ));

  test("signature made with another token → 403", () =>
    rejected(
      apiGatewayEvent({
        path: "/twilio/messaging/inbound",
        params: inboundSms(),
        token: "someone-elses-token",
      }),
      403,
      /invalid/,
    ));

  test("missing signature → 403", () =>
    rejected(
      apiGatewayEvent({ path: "/twilio/messaging/inbound", params: inboundSms(), signature: null }),
      403,
      /missing X-Twilio-Signature/,
    ));

  test("a body tampered after signing → 403", () => {
    const event = apiGatewayEvent({ path: "/twilio/messaging/inbound", params: inboundSms() });
    const tampered = Buffer.from(event.body ?? "", "base64")
      .toString()
      .replace("Hello", "Hullo");
    return rejected({ ...event, body: Buffer.from(tampered).toString("base64") }, 403, /invalid/);
  });

  test("wrong content type → 415", () =>
    rejected(
      apiGatewayEvent({
        path: "/twilio/messaging/inbound",
        params: inboundSms(),
        headers: { "content-type": "text/plain" },
      }),
      415,
      /unsupported content type/,
    ));

  test("missing required field → 400 naming it", () => {
    const { MessageSid: _, ...params } = inboundSms();
    return rejected(apiGatewayEvent({ path: "/twilio/messaging/inbound", params }), 400, /MessageSid/);
  });

  test("unknown Conversations EventType → 400", () =>
    rejected(
      apiGatewayEvent({ path: "/twilio/conversations", params: conversationsEvent("onSomethingNew") }),
      400,
      /unknown EventType/,
    ));

  test("oversize body → 413", () =>
    rejected(
      apiGatewayEvent({
        path: "/twilio/messaging/inbound",
        params: inboundSms({ Body: "x".repeat(300 * 1024) }),
      }),
      413,
      /exceeds/,
    ));

  test("unknown route → 404", () =>
    rejected(apiGatewayEvent({ path: "/twilio/voice", params: inboundSms() }), 404, /no such webhook route/));

  test("GET → 405 with Allow: POST", async () => {
    const response = await handler(
      apiGatewayEvent({ path: "/twilio/messaging/inbound", params: inboundSms(), method: "GET" }),
      context(),
    );
    assert.equal(response.statusCode, 405);
    assert.equal(response.headers?.allow, "POST");
  });
});

describe("hand-off failure", () => {
  test("SQS unreachable → 503, claim released; the redelivery enqueues exactly once", async () => {
    const deadPort = await freePort();
    const broken = await loadHandler({
      CONSENT_QUEUE_URL: aws.resources.queueUrls.consent.replace(/:\d+\//, `:${deadPort}/`),
    });
    const params = inboundSms();
    const event = apiGatewayEvent({ path: "/twilio/messaging/inbound", params });
    const failed = await broken(event, context());
    assert.equal(failed.statusCode, 503);
    assert.equal(await claimOf(`msg-in:${params.MessageSid}`), undefined, "claim released");
    assert.deepEqual(await drain("consent"), []);

    const redelivered = await handler({ ...event }, context());
    assert.equal(redelivered.statusCode, 200);
    const again = await handler({ ...event }, context());
    assert.equal(again.statusCode, 200);
    const messages = await drain("consent");
    assert.equal(messages.length, 1);
    assert.equal(parseEnvelope(messages[0]?.body ?? "").eventId, `msg-in:${params.MessageSid}`);
  });

  test("DynamoDB unreachable → 503 and nothing enqueued", async () => {
    const deadPort = await freePort();
    const broken = await loadHandler({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${deadPort}` });
    try {
      const response = await broken(
        apiGatewayEvent({ path: "/twilio/messaging/inbound", params: inboundSms() }),
        context(),
      );
      assert.equal(response.statusCode, 503);
    } finally {
      // Endpoint variables are process-wide and read lazily; restore the real one for other tests.
      process.env.AWS_ENDPOINT_URL_DYNAMODB = aws.endpoints.dynamodb;
    }
    assert.deepEqual(await drain("consent"), []);
  });
});
