// Event classification: ids, groups and routing per event kind, and the 400 reasons.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseFormBody } from "../../lib/domain/form-body.ts";
import { parseEnvelope, toEnvelope } from "../../lib/domain/queue-envelope.ts";
import {
  classifyEvent,
  InvalidEventError,
  type PostEvent,
  PostEventKeys,
} from "../../lib/domain/webhook-events.ts";

const post = (event: ReturnType<typeof classifyEvent>): PostEvent => {
  if (event.type !== "post")
    throw new assert.AssertionError({ message: `expected a post-event, got ${event.type}` });
  return event;
};

describe("classifyEvent", () => {
  test("every post-event type has an id made of its key fields", () => {
    for (const [type, keys] of Object.entries(PostEventKeys)) {
      const params: Record<string, string> = { EventType: type, ConversationSid: "CH1" };
      for (const key of keys) params[key] ??= `${key}-value`;
      const event = post(classifyEvent("conversations", params));
      assert.equal(event.eventId, [type, ...keys.map((key) => params[key])].join(":"));
      assert.equal(event.kind, `conversations.${type}`);
    }
  });

  test("missing key fields name the field", () => {
    assert.throws(
      () =>
        classifyEvent("conversations", { EventType: "onConversationStateUpdated", ConversationSid: "CH1" }),
      (error: unknown) => error instanceof InvalidEventError && /StateTo/.test(error.message),
    );
    assert.throws(() => classifyEvent("messaging-status", { MessageSid: "SM1" }), /MessageStatus/);
    assert.throws(() => classifyEvent("messaging-inbound", { MessageSid: "SM1", From: "+1" }), /To/);
    assert.throws(() => classifyEvent("conversations", {}), /EventType/);
  });

  test("pre-events are recognised and carry no id", () => {
    const event = classifyEvent("conversations", { EventType: "onParticipantAdd", AccountSid: "AC1" });
    assert.deepEqual(event, { type: "pre", eventType: "onParticipantAdd", accountSid: "AC1" });
  });

  test("consent routing: phone authors and 21610 only", () => {
    const fromPhone = post(
      classifyEvent("conversations", {
        EventType: "onMessageAdded",
        MessageSid: "IM1",
        Author: "whatsapp:+447700900123",
      }),
    );
    const fromChat = post(
      classifyEvent("conversations", {
        EventType: "onMessageAdded",
        MessageSid: "IM2",
        Author: "agent.jane",
      }),
    );
    const optedOut = post(
      classifyEvent("conversations", {
        EventType: "onDeliveryUpdated",
        DeliveryReceiptSid: "DY1",
        Status: "failed",
        DateUpdated: "d",
        ErrorCode: "21610",
      }),
    );
    assert.deepEqual([...fromPhone.destinations].sort(), ["consent", "mirror"]);
    assert.deepEqual(fromChat.destinations, ["mirror"]);
    assert.deepEqual([...optedOut.destinations].sort(), ["consent", "mirror"]);
    assert.equal(fromPhone.groupKey, "onMessageAdded:IM1", "no ConversationSid → grouped by the resource");
  });

  test("repeated keys survive the envelope round trip", () => {
    const params = parseFormBody(
      "EventType=onConversationAdd&MessagingBinding.Address=%2B1&MessagingBinding.Address=%2B2",
    );
    const inbound = post(classifyEvent("messaging-inbound", { MessageSid: "SM1", From: "+1", To: "+2" }));
    const envelope = parseEnvelope(JSON.stringify(toEnvelope(inbound, params, 5)));
    assert.deepEqual(envelope.params["MessagingBinding.Address"], ["+1", "+2"]);
  });

  test("malformed envelopes are rejected with the reason", () => {
    for (const [body, reason] of [
      ["nope", /not JSON/],
      ["[]", /not an object/],
      ['{"v":2}', /version/],
      ['{"v":1,"eventId":"e","kind":"other","receivedAt":1,"params":{}}', /unknown kind/],
      ['{"v":1,"eventId":"e","kind":"messaging.inbound","receivedAt":1,"params":{"a":1}}', /param a/],
    ] as const) {
      assert.throws(() => parseEnvelope(body), reason);
    }
  });
});
