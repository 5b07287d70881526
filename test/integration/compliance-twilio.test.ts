// The Twilio side of compliance through the real `twilio` SDK against the local Twilio emulator (only the
// base URL differs): listing a person's conversations, removing participants (20404 = already gone),
// system notices, replies (21610 = Twilio's block), error classification by code, and the whole use
// case with the DynamoDB consent store removing a participant under injected 429s.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { twilioConsentMessaging } from "../../lib/adapters/compliance-twilio.ts";
import { dynamoConsentStore } from "../../lib/adapters/consent-store.ts";
import { type TwilioClient, twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import { type ConsentMessaging, handleConsentEnvelope } from "../../lib/app/compliance.ts";
import type { EventQueue } from "../../lib/app/ports.ts";
import { complianceSettingsLookup } from "../../lib/config/compliance-config.ts";
import { parseTwilioRestConfig } from "../../lib/config/twilio-config.ts";
import type { Envelope } from "../../lib/domain/queue-envelope.ts";
import { classifyTwilioFailure, TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import { startTwilioEmulator, type TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import { type LocalAws, localAws } from "../support/local-aws.ts";

const AccountSid = `AC${"7".repeat(32)}`;
const AuthToken = "compliance-emulator-token";
const OurNumber = "+15550000001";
const OtherNumber = "+15550000002";
const Person = "+15557654321";

let emulator: TwilioEmulator;
let aws: LocalAws;
let sdk: TwilioClient;
let messaging: ConsentMessaging;

const providerFor = (token: string) =>
  twilioClientProvider(
    parseTwilioRestConfig({
      TWILIO_ACCOUNT_SID: AccountSid,
      TWILIO_AUTH_TOKEN: token,
      TWILIO_API_BASE_URL: emulator.url,
    }),
  );

before(async () => {
  [emulator, aws] = await Promise.all([
    startTwilioEmulator({
      accountSid: AccountSid,
      authToken: AuthToken,
      phoneNumbers: [OurNumber, OtherNumber],
    }),
    localAws(),
  ]);
  sdk = await providerFor(AuthToken)();
  messaging = twilioConsentMessaging(providerFor(AuthToken));
});

after(async () => {
  await emulator.stop();
});

beforeEach(() => emulator.reset());

const conversationWith = async (address: string, proxyAddress: string, state?: "closed") => {
  const conversation = await sdk.conversations.v1.conversations.create({});
  const participant = await sdk.conversations.v1.conversations(conversation.sid).participants.create({
    "messagingBinding.address": address,
    "messagingBinding.proxyAddress": proxyAddress,
  });
  if (state === "closed") await sdk.conversations.v1.conversations(conversation.sid).update({ state });
  return { conversationSid: conversation.sid, participantSid: participant.sid };
};

describe("ConsentMessaging on the emulator", () => {
  test("lists the person's open conversations with our number and the Messaging Service", async () => {
    // Closing releases the number pair, so the closed thread comes first (as in real life).
    await conversationWith(Person, OurNumber, "closed");
    const first = await conversationWith(Person, OurNumber);
    const second = await conversationWith(Person, OtherNumber);
    await conversationWith("+15550009999", OurNumber);
    const found = await messaging.conversationsOf(Person);
    assert.deepEqual(
      found.map((binding) => [binding.conversationSid, binding.participantSid, binding.proxyAddress]).sort(),
      [
        [first.conversationSid, first.participantSid, OurNumber],
        [second.conversationSid, second.participantSid, OtherNumber],
      ].sort(),
    );
    assert.ok(found.every((binding) => binding.messagingServiceSid === emulator.state.messagingServiceSid()));
  });

  test("removing a participant twice: removed, then already gone (20404 is success)", async () => {
    const { conversationSid, participantSid } = await conversationWith(
      `whatsapp:${Person}`,
      `whatsapp:${OurNumber}`,
    );
    assert.equal(await messaging.removeParticipant(conversationSid, participantSid), "removed");
    assert.deepEqual(emulator.state.participants(conversationSid), []);
    assert.equal(await messaging.removeParticipant(conversationSid, participantSid), "already-gone");
    assert.equal(await messaging.participant(conversationSid, participantSid), undefined);
  });

  test("reads one participant's binding", async () => {
    const { conversationSid, participantSid } = await conversationWith(
      `whatsapp:${Person}`,
      `whatsapp:${OurNumber}`,
    );
    const binding = await messaging.participant(conversationSid, participantSid);
    assert.equal(binding?.address, `whatsapp:${Person}`);
    assert.equal(binding?.proxyAddress, `whatsapp:${OurNumber}`);
  });

  test("posts a system notice with compliance attributes", async () => {
    const { conversationSid } = await conversationWith(Person, OurNumber);
    await messaging.postNotice(conversationSid, "Customer opted out.", {
      kind: "compliance",
      action: "opt-out",
    });
    const [message] = emulator.state.messages(conversationSid);
    assert.equal(message?.author, "system");
    assert.equal(message?.body, "Customer opted out.");
    assert.deepEqual(JSON.parse(message?.attributes ?? "{}"), { kind: "compliance", action: "opt-out" });
  });

  test("sends a reply, and reports Twilio's 21610 block instead of failing", async () => {
    assert.equal(
      await messaging.sendText({
        from: `whatsapp:${OurNumber}`,
        to: `whatsapp:${Person}`,
        body: "Unsubscribed.",
      }),
      "sent",
    );
    assert.deepEqual(
      emulator.state.outboundMessages().map((m) => [m.from, m.to, m.body]),
      [[`whatsapp:${OurNumber}`, `whatsapp:${Person}`, "Unsubscribed."]],
    );
    emulator.optOut(Person);
    assert.equal(await messaging.sendText({ from: OurNumber, to: Person, body: "Unsubscribed." }), "blocked");
  });

  test("failures arrive as TwilioApiError classified by code: 20429 retryable, 20003 configuration", async () => {
    emulator.faults.inject({ status: 429, count: 1, match: { pathPrefix: "/v1/ParticipantConversations" } });
    const throttled = await messaging.conversationsOf(Person).catch((error: unknown) => error);
    assert.ok(throttled instanceof TwilioApiError);
    assert.equal(throttled.code, 20429);
    assert.equal(classifyTwilioFailure(throttled), "retryable");

    const wrongCredentials = twilioConsentMessaging(providerFor("not-the-token"));
    const denied = await wrongCredentials.conversationsOf(Person).catch((error: unknown) => error);
    assert.ok(denied instanceof TwilioApiError);
    assert.equal(denied.code, 20003);
    assert.equal(classifyTwilioFailure(denied), "configuration");
  });
});

describe("compliance use case on the emulator and DynamoDB Local", () => {
  const forwarded: string[] = [];
  const queue: EventQueue = {
    send: async (_queue, message) => {
      forwarded.push(message.deduplicationId);
    },
  };
  const directory = { defaultTenant: "default", senders: {}, tenants: {} };
  const sleeps: number[] = [];
  const deps = () => ({
    tenants: directory,
    settings: complianceSettingsLookup(directory),
    store: dynamoConsentStore({ client: aws.clients.dynamodb, tableName: aws.resources.tableNames.consent }),
    twilio: messaging,
    queue,
    now: Date.now,
    retry: {
      attempts: 4,
      baseDelayMs: 10,
      maxDelayMs: 50,
      sleep: async (ms: number) => {
        sleeps.push(ms);
      },
    },
  });

  const whatsappStop = (eventId: string): Envelope => ({
    v: 1,
    eventId,
    kind: "messaging.inbound",
    receivedAt: Date.now(),
    params: { MessageSid: eventId, From: `whatsapp:${Person}`, To: `whatsapp:${OurNumber}`, Body: "STOP" },
  });

  test("a WhatsApp STOP removes the participant through 429s, tells agents and confirms once", async () => {
    const kept = await conversationWith(`whatsapp:${Person}`, `whatsapp:${OtherNumber}`);
    const { conversationSid } = await conversationWith(`whatsapp:${Person}`, `whatsapp:${OurNumber}`);
    emulator.faults.inject({ status: 429, count: 2, match: { method: "DELETE" } });
    const envelope = whatsappStop(`msg-in:SM-it-${Date.now()}`);
    const report = await handleConsentEnvelope(deps(), envelope, {
      receiveCount: 1,
      remainingMs: () => 30_000,
    });
    assert.equal(report.outcome, "opted-out");
    assert.equal(sleeps.length, 2, "two throttled attempts were retried");
    assert.deepEqual(emulator.state.participants(conversationSid), []);
    assert.equal(
      emulator.state.participants(kept.conversationSid).length,
      1,
      "another sender's thread is kept",
    );
    assert.equal(emulator.state.messages(conversationSid)[0]?.author, "system");
    assert.equal(emulator.state.outboundMessages().length, 1);

    const replay = await handleConsentEnvelope(deps(), envelope, {
      receiveCount: 2,
      remainingMs: () => 30_000,
    });
    assert.equal(replay.decision, "replayed");
    assert.equal(emulator.state.outboundMessages().length, 1, "no second confirmation");
    assert.equal(emulator.state.messages(conversationSid).length, 1, "no second notice");
    assert.deepEqual(forwarded, []);
  });
});
