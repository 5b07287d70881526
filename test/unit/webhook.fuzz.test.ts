// Fuzzes the HTTP edge (API Gateway event adapter + webhook use case): arbitrary methods, paths,
// headers, encodings, bodies and sizes must always get a 4xx, never a 5xx, and nothing may be claimed
// or enqueued. Validly signed but arbitrary params may be accepted or rejected, never 5xx.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import fc from "fast-check";
import { fromApiGatewayEvent } from "../../lib/adapters/api-gateway.ts";
import { handleWebhook } from "../../lib/app/webhook.ts";
import { fakeDeps, signedRequest } from "../support/webhook-fakes.ts";

const routes = ["/twilio/conversations", "/twilio/messaging/inbound", "/twilio/messaging/status"];

const contentType = fc.oneof(
  fc.constant("application/x-www-form-urlencoded"),
  fc.constant("application/x-www-form-urlencoded; charset=utf-8"),
  fc.constant("application/json"),
  fc.constant("text/plain"),
  fc.constant("multipart/form-data; boundary=x"),
  fc.constant(""),
  fc.string(),
);

const body = fc.oneof(
  fc.string({ maxLength: 2000 }),
  fc.string({ unit: "grapheme", maxLength: 500 }),
  fc.uint8Array({ maxLength: 4000 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
  fc
    .dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 50 }))
    .map((d) => new URLSearchParams(d).toString()),
  fc.constant("%"),
  fc.constant("a=%E0%A4%A"),
  fc.constant("{}"),
  fc.constant("[1,2]"),
  fc.constant("x".repeat(300 * 1024)),
);

const event = fc.record({
  method: fc.oneof(fc.constantFrom("POST", "GET", "PUT", "DELETE", "OPTIONS"), fc.string({ maxLength: 8 })),
  path: fc.oneof(
    fc.constantFrom(...routes),
    fc.string({ maxLength: 40 }),
    fc.constant("/twilio/conversations/"),
  ),
  query: fc.oneof(fc.constant(""), fc.string({ maxLength: 60 })),
  contentType,
  signature: fc.option(fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 40 })), {
    nil: undefined,
  }),
  body,
  base64: fc.boolean(),
  extraHeaders: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 40 }), {
    maxKeys: 4,
  }),
});

test("arbitrary requests always get a 4xx and write nothing", async () => {
  await fc.assert(
    fc.asyncProperty(event, async (input) => {
      const { deps, dedupe, queue } = fakeDeps();
      const apiEvent = {
        rawPath: input.path,
        rawQueryString: input.query,
        headers: {
          ...input.extraHeaders,
          "content-type": input.contentType,
          ...(input.signature === undefined ? {} : { "x-twilio-signature": input.signature }),
        },
        requestContext: { http: { method: input.method }, timeEpoch: 1 },
        body: input.base64 ? Buffer.from(input.body, "latin1").toString("base64") : input.body,
        isBase64Encoded: input.base64,
      } as unknown as APIGatewayProxyEventV2;
      const result = await handleWebhook(deps, fromApiGatewayEvent(apiEvent));
      assert.ok(
        result.response.statusCode >= 400 && result.response.statusCode < 500,
        `status ${result.response.statusCode} for ${JSON.stringify(input).slice(0, 200)}`,
      );
      assert.equal(queue.attempts, 0);
      assert.equal(dedupe.claims.size, 0);
    }),
    { numRuns: 2000 },
  );
});

test("validly signed arbitrary params are accepted or rejected with 4xx, never 5xx", async () => {
  const params = fc.dictionary(
    fc.oneof(
      fc.constantFrom(
        "MessageSid",
        "From",
        "To",
        "MessageStatus",
        "EventType",
        "ConversationSid",
        "ParticipantSid",
      ),
      fc.string({ minLength: 1, maxLength: 12 }),
    ),
    fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 3 }),
    ),
    { maxKeys: 8 },
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), params, async (route, input) => {
      const { deps, queue } = fakeDeps();
      const result = await handleWebhook(deps, signedRequest(route, input));
      const status = result.response.statusCode;
      assert.ok(status < 500, `status ${status}`);
      if (status >= 400) assert.equal(queue.attempts, 0);
      else assert.ok(result.outcome === "enqueued" || result.outcome === "pre-allowed");
    }),
    { numRuns: 1000 },
  );
});
