// The mirror's Twilio adapter against the local Twilio emulator through the real `twilio` SDK: every
// request is checked against Twilio's OpenAPI spec (unknown parameters rejected), and the conflict
// codes the use case branches on (50353, 50416, 50437, 50377, 20404) come back as results.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import twilio from "twilio";
import { twilioMirrorPort } from "../../lib/adapters/mirror-twilio.ts";
import type { MirrorTwilio } from "../../lib/app/mirror/ports.ts";
import { MirrorMarker } from "../../lib/domain/mirror.ts";
import { classifyTwilioFailure, TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import {
  routeTwilioClientTo,
  startTwilioEmulator,
  type TwilioEmulator,
} from "../../lib/local/twilio-emulator/server.ts";

const AccountSid = `AC${"5".repeat(32)}`;
const AuthToken = "mirror-emulator-token";
const Ours = "+15005550006";
const Customer = "+14155550100";
const noTimers = { inactive: undefined, closed: undefined };

let emulator: TwilioEmulator;
let port: MirrorTwilio;
let now = Date.UTC(2026, 5, 1, 12);

before(async () => {
  emulator = await startTwilioEmulator({
    accountSid: AccountSid,
    authToken: AuthToken,
    phoneNumbers: [Ours],
    now: () => now,
  });
  const client = twilio(AccountSid, AuthToken, { autoRetry: false });
  routeTwilioClientTo(client, emulator.url);
  port = twilioMirrorPort(async () => client);
});

after(() => emulator.stop());

beforeEach(() => emulator.reset());

const created = async (uniqueName: string, timers = noTimers) => {
  const result = await port.createThread({
    uniqueName,
    attributes: "{}",
    messagingServiceSid: undefined,
    timers,
  });
  assert.equal(result.kind, "created");
  return result.kind === "created" ? result.conversationSid : "";
};

const close = (conversationSid: string) =>
  fetch(`${emulator.url}/v1/Conversations/${conversationSid}`, {
    method: "POST",
    headers: {
      Authorization: `Basic ${Buffer.from(`${AccountSid}:${AuthToken}`).toString("base64")}`,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: "State=closed",
  });

describe("threads", () => {
  test("create with timers (sent with State, as Twilio requires) and a Messaging Service", async () => {
    const service = emulator.state.messagingServiceSid();
    const result = await port.createThread({
      uniqueName: "t_acme_sms_14155550100",
      attributes: JSON.stringify({ tenantId: "acme", channel: "sms" }),
      messagingServiceSid: service,
      timers: { inactive: "PT24H", closed: "P7D" },
    });
    assert.equal(result.kind, "created");
    const view = emulator.state.conversation("t_acme_sms_14155550100");
    assert.equal(view?.state, "active");
    assert.equal(view?.messagingServiceSid, service);
    assert.deepEqual(view?.timers, { inactiveAfterMs: 24 * 3600_000, closedAfterMs: 7 * 24 * 3600_000 });
    assert.deepEqual(JSON.parse(view?.attributes ?? "{}"), { tenantId: "acme", channel: "sms" });
  });

  test("a taken unique name is a result, not an error (50353)", async () => {
    await created("t_acme_sms_1");
    const again = await port.createThread({
      uniqueName: "t_acme_sms_1",
      attributes: "{}",
      messagingServiceSid: undefined,
      timers: noTimers,
    });
    assert.deepEqual(again, { kind: "name-taken" });
    assert.equal(emulator.state.conversations().length, 1);
  });

  test("fetch by unique name or SID; unknown is undefined; delete removes", async () => {
    const sid = await created("t_acme_sms_2");
    assert.deepEqual(await port.fetchThread("t_acme_sms_2"), {
      conversationSid: sid,
      uniqueName: "t_acme_sms_2",
      state: "active",
    });
    assert.equal((await port.fetchThread(sid))?.conversationSid, sid);
    assert.equal(await port.fetchThread("t_acme_sms_404"), undefined);
    await port.deleteThread(sid);
    assert.equal(await port.fetchThread(sid), undefined);
    await port.deleteThread(sid);
  });
});

describe("participants", () => {
  test("bound, already bound (50437), bound elsewhere (50416, naming the holder), closed (50377)", async () => {
    const first = await created("t_a");
    const second = await created("t_b");
    const binding = { address: Customer, proxyAddress: Ours };
    assert.deepEqual(await port.addCustomer(first, binding), { kind: "bound" });
    assert.deepEqual(await port.addCustomer(first, binding), { kind: "already-bound" });
    assert.deepEqual(await port.addCustomer(second, binding), { kind: "bound-elsewhere", holderSid: first });
    await close(second);
    assert.deepEqual(await port.addCustomer(second, binding), { kind: "thread-closed" });
    assert.deepEqual(
      emulator.state.participants(first).map((p) => [p.address, p.proxyAddress, p.channel]),
      [[Customer, Ours, "sms"]],
    );
  });

  test("participantBinding finds the customer's SMS/WhatsApp participant of one conversation", async () => {
    const sid = await created("t_participant");
    const other = await created("t_participant_other");
    assert.equal(await port.participantBinding(sid, Customer), undefined);
    await port.addCustomer(sid, { address: Customer, proxyAddress: Ours });
    await port.addCustomer(other, { address: "whatsapp:+14155550111", proxyAddress: `whatsapp:${Ours}` });
    assert.deepEqual(await port.participantBinding(sid, Customer), { proxyAddress: Ours });
    assert.equal(await port.participantBinding(other, Customer), undefined, "another customer is not them");
    assert.deepEqual(await port.participantBinding(other, "whatsapp:+14155550111"), {
      proxyAddress: `whatsapp:${Ours}`,
    });
    await port.deleteThread(sid);
    assert.equal(await port.participantBinding(sid, Customer), undefined, "a deleted thread binds no one");
  });

  test("ParticipantConversations lists where an address is bound, with proxy and state", async () => {
    const open = await created("t_open");
    const closed = await created("t_closed");
    await port.addCustomer(closed, { address: Customer, proxyAddress: Ours });
    await close(closed);
    await port.addCustomer(open, { address: Customer, proxyAddress: Ours });
    const held = await port.bindingsOf(Customer);
    assert.deepEqual(
      held.map((h) => [h.conversationSid, h.uniqueName, h.state, h.proxyAddress]).sort(),
      [
        [closed, "t_closed", "closed", Ours],
        [open, "t_open", "active", Ours],
      ].sort(),
    );
    assert.deepEqual(await port.bindingsOf("+14155550999"), []);
  });
});

describe("messages", () => {
  test("post, list newest first with parsed attributes, update attributes", async () => {
    const sid = await created("t_msgs");
    await port.addCustomer(sid, { address: Customer, proxyAddress: Ours });
    const attributes = JSON.stringify({ mirroredBy: MirrorMarker, messagingMessageSid: "SM1" });
    const first = await port.postMessage(sid, { author: Customer, body: "one", attributes });
    now += 1_000;
    const second = await port.postMessage(sid, { author: "system", body: "two", attributes: "{}" });
    assert.equal(first.kind, "posted");
    assert.equal(second.kind, "posted");

    const recent = await port.recentMessages(sid, 50);
    assert.deepEqual(
      recent?.map((m) => [m.body, m.author, m.index]),
      [
        ["two", "system", 1],
        ["one", Customer, 0],
      ],
    );
    assert.deepEqual(recent?.[1]?.attributes, { mirroredBy: MirrorMarker, messagingMessageSid: "SM1" });
    assert.equal(recent?.[0]?.createdAt, now);
    assert.equal(recent?.[0]?.mediaCount, 0);
    assert.equal(emulator.state.messages(sid)[0]?.participantSid, emulator.state.participants(sid)[0]?.sid);

    const messageSid = first.kind === "posted" ? first.messageSid : "";
    assert.equal(await port.updateMessageAttributes(sid, messageSid, '{"status":"read"}'), "updated");
    assert.equal(emulator.state.messages(sid)[0]?.attributes, '{"status":"read"}');
  });

  test("a template is posted with ContentSid and ContentVariables, under a business author", async () => {
    const sid = await created("t_template");
    const contentSid = `HX${"d".repeat(32)}`;
    const posted = await port.postMessage(sid, {
      author: "acme-support",
      body: undefined,
      attributes: JSON.stringify({ mirroredBy: MirrorMarker, outbound: true, sendId: "s-1" }),
      contentSid,
      contentVariables: '{"1":"Ada"}',
    });
    assert.equal(posted.kind, "posted");
    const [message] = emulator.state.messages(sid);
    assert.deepEqual(
      [message?.author, message?.body, message?.contentSid, message?.contentVariables],
      ["acme-support", null, contentSid, '{"1":"Ada"}'],
    );
  });

  test("conversation attributes are read and replaced; closed and deleted threads answer as results", async () => {
    const sid = await created("t_attributes");
    assert.equal(await port.threadAttributes(sid), "{}");
    const next = JSON.stringify({ tenantId: "acme", outboundNotMirrored: [{ messagingMessageSid: "SM1" }] });
    assert.equal(await port.updateThreadAttributes(sid, next), "updated");
    assert.equal(await port.threadAttributes(sid), next);
    assert.equal(emulator.state.conversation(sid)?.attributes, next);
    await close(sid);
    assert.equal(await port.updateThreadAttributes(sid, "{}"), "thread-closed");
    const gone = await created("t_attributes_gone");
    await port.deleteThread(gone);
    assert.equal(await port.threadAttributes(gone), undefined);
    assert.equal(await port.updateThreadAttributes(gone, "{}"), "gone");
  });

  test("a closed thread answers thread-closed; a deleted one thread-gone / gone / undefined", async () => {
    const closed = await created("t_closed_msgs");
    const posted = await port.postMessage(closed, { author: "system", body: "x", attributes: "{}" });
    await close(closed);
    assert.deepEqual(await port.postMessage(closed, { author: "system", body: "y", attributes: "{}" }), {
      kind: "thread-closed",
    });
    const messageSid = posted.kind === "posted" ? posted.messageSid : "";
    assert.equal(await port.updateMessageAttributes(closed, messageSid, "{}"), "thread-closed");

    const gone = await created("t_gone");
    await port.deleteThread(gone);
    assert.deepEqual(await port.postMessage(gone, { author: "system", body: "z", attributes: "{}" }), {
      kind: "thread-gone",
    });
    assert.equal(await port.recentMessages(gone, 10), undefined);
    assert.equal(await port.updateMessageAttributes(gone, messageSid, "{}"), "gone");
  });
});

describe("Programmable Messaging", () => {
  test("a template send is fetched back as an outbound message", async () => {
    const contentSid = `HX${"c".repeat(32)}`;
    const sent = await port.sendMessage({
      to: `whatsapp:${Customer}`,
      from: `whatsapp:${Ours}`,
      contentSid,
      contentVariables: '{"1":"Ada"}',
      statusCallback: "https://hooks.example.test/twilio/messaging/status",
    });
    assert.match(sent.sid, /^SM[0-9a-f]{32}$/);
    const [record] = emulator.state.outboundMessages();
    assert.deepEqual([record?.contentSid, record?.contentVariables], [contentSid, '{"1":"Ada"}']);
    const fetched = await port.fetchSentMessage(sent.sid);
    assert.deepEqual(
      [fetched?.to, fetched?.from, fetched?.direction],
      [`whatsapp:${Customer}`, `whatsapp:${Ours}`, "outbound-api"],
    );
    assert.equal(await port.fetchSentMessage(`SM${"0".repeat(32)}`), undefined);
  });
});

describe("failures", () => {
  test("429 surfaces as retryable 20429; 401 as a configuration problem", async () => {
    emulator.faults.inject({ status: 429, count: 1, match: { pathPrefix: "/v1/Conversations" } });
    const throttled = await port.fetchThread("t_any").catch((error: unknown) => error);
    assert.ok(throttled instanceof TwilioApiError);
    assert.equal(throttled.code, 20429);
    assert.equal(classifyTwilioFailure(throttled), "retryable");

    const wrong = twilio(AccountSid, "wrong-token", { autoRetry: false });
    routeTwilioClientTo(wrong, emulator.url);
    const denied = await twilioMirrorPort(async () => wrong)
      .fetchThread("t_any")
      .catch((error: unknown) => error);
    assert.ok(denied instanceof TwilioApiError);
    assert.equal(classifyTwilioFailure(denied), "configuration");
  });
});
