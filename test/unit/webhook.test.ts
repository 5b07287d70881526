// The webhook use case with in-memory ports: outcomes, claim release, the resend window, pre-events,
// token rotation. The integration test runs the same flows on DynamoDB Local and fauxqs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { handleWebhook } from "../../lib/app/webhook.ts";
import { parseEnvelope } from "../../lib/domain/queue-envelope.ts";
import { conversationsEvent, inboundSms, statusCallback, TestAuthToken } from "../support/twilio-webhooks.ts";
import { fakeDeps, signedRequest, staticTokens } from "../support/webhook-fakes.ts";

describe("webhook use case", () => {
  test("first delivery is enqueued with the envelope, group and dedup id", async () => {
    const { deps, queue } = fakeDeps();
    const params = inboundSms({ From: "whatsapp:+447700900123", To: "whatsapp:+15005550006" });
    const result = await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", params));
    assert.equal(result.outcome, "enqueued");
    assert.equal(result.response.statusCode, 200);
    assert.equal(queue.sent.length, 1);
    const [sent] = queue.sent;
    assert.equal(sent?.queue, "consent");
    assert.equal(sent?.message.groupKey, "addr:whatsapp:+447700900123");
    assert.equal(sent?.message.deduplicationId, `msg-in:${params.MessageSid}`);
    const envelope = parseEnvelope(sent?.message.body ?? "");
    assert.equal(envelope.receivedAt, 1_800_000_000_000);
    assert.deepEqual({ ...envelope.params }, params);
  });

  test("a duplicate inside the resend window re-sends with the same dedup id (SQS drops it)", async () => {
    const { deps, queue } = fakeDeps();
    const params = inboundSms();
    await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", params, { receivedAt: 1000 }));
    const again = await handleWebhook(
      deps,
      signedRequest("/twilio/messaging/inbound", params, { receivedAt: 2000 }),
    );
    assert.equal(again.outcome, "duplicate-resent");
    assert.equal(queue.attempts, 2);
    assert.equal(queue.sent.length, 1);
  });

  test("a duplicate after the resend window does not touch SQS at all", async () => {
    const { deps, queue } = fakeDeps({ resendWindowMs: 1000 });
    const params = inboundSms();
    await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", params, { receivedAt: 1000 }));
    const late = await handleWebhook(
      deps,
      signedRequest("/twilio/messaging/inbound", params, { receivedAt: 2000 }),
    );
    assert.equal(late.outcome, "duplicate");
    assert.equal(late.response.statusCode, 200);
    assert.equal(queue.attempts, 1);
  });

  test("a crash between claim and send is recovered by the redelivery inside the window", async () => {
    const { deps, dedupe, queue } = fakeDeps();
    const params = inboundSms();
    // The first invocation claimed and died: the claim exists, nothing was sent, nothing released.
    await dedupe.claim(`msg-in:${params.MessageSid}`, 1000);
    const redelivery = await handleWebhook(
      deps,
      signedRequest("/twilio/messaging/inbound", params, { receivedAt: 5000 }),
    );
    assert.equal(redelivery.outcome, "duplicate-resent");
    assert.equal(queue.sent.length, 1);
  });

  test("hand-off failure → 503, claim released, redelivery enqueues once", async () => {
    const { deps, dedupe, queue } = fakeDeps();
    queue.fail = new Error("connect ECONNREFUSED");
    const request = signedRequest("/twilio/messaging/inbound", inboundSms());
    const failed = await handleWebhook(deps, request);
    assert.equal(failed.response.statusCode, 503);
    assert.equal(failed.response.headers?.["retry-after"], "1");
    assert.equal(dedupe.claims.size, 0);
    assert.doesNotMatch(failed.response.body ?? "", /ECONNREFUSED/, "no internals in the body");
    queue.fail = undefined;
    assert.equal((await handleWebhook(deps, request)).outcome, "enqueued");
    assert.equal(queue.sent.length, 1);
  });

  test("dedupe store failure → 503 and nothing sent", async () => {
    const { deps, dedupe, queue } = fakeDeps();
    dedupe.failClaim = new Error("DynamoDB down");
    const result = await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", inboundSms()));
    assert.equal(result.response.statusCode, 503);
    assert.equal(queue.attempts, 0);
  });

  test("a 21610 status failure is fanned out to mirror and consent", async () => {
    const { deps, queue } = fakeDeps();
    const params = statusCallback({ MessageStatus: "undelivered", ErrorCode: "21610" });
    const result = await handleWebhook(deps, signedRequest("/twilio/messaging/status", params));
    assert.equal(result.response.statusCode, 204);
    assert.deepEqual(queue.sent.map((sent) => sent.queue).sort(), ["consent", "mirror"]);
  });

  test("partial fan-out failure is not acknowledged and the retry completes it without duplicates", async () => {
    const { deps, queue } = fakeDeps();
    const params = statusCallback({ MessageStatus: "failed", ErrorCode: "21610" });
    const original = queue.send.bind(queue);
    let failConsent = true;
    queue.send = async (name, message) => {
      if (name === "consent" && failConsent) throw new Error("throttled");
      return original(name, message);
    };
    const first = await handleWebhook(deps, signedRequest("/twilio/messaging/status", params));
    assert.equal(first.response.statusCode, 503);
    failConsent = false;
    const retry = await handleWebhook(deps, signedRequest("/twilio/messaging/status", params));
    assert.equal(retry.response.statusCode, 204);
    assert.deepEqual(queue.sent.map((sent) => sent.queue).sort(), ["consent", "mirror"]);
  });

  test("pre-events are decided in process, never claimed or enqueued", async () => {
    const rejecting = fakeDeps({
      preEvents: {
        decide: async (event) => ({ allow: false, reason: `${event.eventType} refused: opted out` }),
      },
    });
    const params = conversationsEvent("onParticipantAdd", { "MessagingBinding.Address": "+14155550100" });
    const rejected = await handleWebhook(rejecting.deps, signedRequest("/twilio/conversations", params));
    assert.equal(rejected.response.statusCode, 403);
    assert.match(rejected.response.body ?? "", /opted out/);
    assert.equal(rejecting.dedupe.claims.size, 0);
    assert.equal(rejecting.queue.attempts, 0);

    const allowing = fakeDeps();
    const allowed = await handleWebhook(allowing.deps, signedRequest("/twilio/conversations", params));
    assert.equal(allowed.response.statusCode, 200);
    assert.equal(allowed.response.body, undefined);
    assert.equal(allowed.outcome, "pre-allowed");
  });

  test("secondary token during rotation and subaccount tokens verify", async () => {
    const { deps } = fakeDeps({ tokens: staticTokens(["old-primary", TestAuthToken]) });
    const result = await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", inboundSms()));
    assert.equal(result.outcome, "enqueued");
  });

  test("a failed verification refreshes the tokens once and accepts a just-rotated token", async () => {
    let tokens = ["stale-token"];
    let refreshes = 0;
    const { deps } = fakeDeps({
      tokens: {
        tokensFor: async () => tokens,
        refresh: async () => {
          refreshes += 1;
          tokens = [TestAuthToken];
          return true;
        },
      },
    });
    const result = await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", inboundSms()));
    assert.equal(result.outcome, "enqueued");
    assert.equal(refreshes, 1);
  });

  test("token source failure is a dependency failure (503), not a 403", async () => {
    const { deps } = fakeDeps({
      tokens: {
        tokensFor: async () => Promise.reject(new Error("secrets down")),
        refresh: async () => false,
      },
    });
    const result = await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", inboundSms()));
    assert.equal(result.response.statusCode, 503);
  });

  test("the signature covers the raw query string byte for byte", async () => {
    const { deps } = fakeDeps();
    const query = "tenant=acme&note=It's+a%20test&x=%2B1";
    const ok = await handleWebhook(deps, signedRequest("/twilio/messaging/inbound", inboundSms(), { query }));
    assert.equal(ok.outcome, "enqueued");
    const request = signedRequest("/twilio/messaging/inbound", inboundSms(), { query });
    const reordered = await handleWebhook(deps, {
      ...request,
      rawQueryString: "note=It's+a%20test&tenant=acme&x=%2B1",
    });
    assert.equal(reordered.response.statusCode, 403);
  });

  test("a JSON body is verified through bodySHA256", async () => {
    const { deps, queue } = fakeDeps();
    const body = JSON.stringify({ EventType: "onMessageAdded", MessageSid: "IM1", ConversationSid: "CH1" });
    const { createHash, createHmac } = await import("node:crypto");
    const query = `bodySHA256=${createHash("sha256").update(body).digest("hex")}`;
    const url = `https://hooks.example.test/twilio/conversations?${query}`;
    const signature = createHmac("sha1", TestAuthToken).update(url).digest("base64");
    const request = {
      method: "POST",
      rawPath: "/twilio/conversations",
      rawQueryString: query,
      headers: { "content-type": "application/json", "x-twilio-signature": signature },
      body: Buffer.from(body),
      receivedAt: 1,
    };
    assert.equal((await handleWebhook(deps, request)).outcome, "enqueued");
    const tampered = { ...request, body: Buffer.from(body.replace("IM1", "IM2")) };
    assert.equal((await handleWebhook(deps, tampered)).response.statusCode, 403);
    assert.equal(queue.sent.length, 1);
  });
});
