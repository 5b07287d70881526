// Opt-out compliance end to end on the local stack: signed webhooks enter through the HTTP front door,
// the webhook bundle dedupes and hands off to the consent FIFO queue, the compliance bundle consumes it
// against DynamoDB Local and the Twilio emulator. The mirror function is left out so its queue can be
// read to see exactly what compliance let through.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type twilio from "twilio";
import { PreEventReasons } from "../../lib/adapters/consent-pre-event-policy.ts";
import { DefaultComplianceTexts } from "../../lib/config/compliance-config.ts";
import { parseEnvelope } from "../../lib/domain/queue-envelope.ts";
import { silentConsole } from "../../lib/local/console.ts";
import type { localClients } from "../../lib/local/provision.ts";
import { EmulatedTwilioAccount, type LocalStack } from "../../lib/local/stack.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import {
  inboundSmsParams,
  inboundWhatsAppParams,
  preParticipantAddParams,
  sid,
  statusParams,
} from "../../lib/local/twilio-webhooks.ts";
import { type E2eStack, startE2eStack } from "../support/e2e-stack.ts";

const Ours = EmulatedTwilioAccount.phoneNumber;
const { accountSid } = EmulatedTwilioAccount;

let e2e: E2eStack;
let stack: LocalStack;
let emulator: TwilioEmulator;
let sdk: ReturnType<typeof twilio>;
let sqs: ReturnType<typeof localClients>["sqs"];
const complianceLogs: Record<string, unknown>[] = [];

before(async () => {
  e2e = await startE2eStack(["webhook", "compliance"], {
    visibilityTimeoutSeconds: 2,
    functions: { mirror: { bundleDir: "test/e2e/.no-mirror-bundle" } },
    console: {
      ...silentConsole,
      functionLog: (name, line) => {
        if (name !== "compliance" || !line.startsWith("{")) return;
        try {
          complianceLogs.push(JSON.parse(line));
        } catch {
          // Not one of our JSON log lines (e.g. a runtime message).
        }
      },
    },
  });
  ({ stack, emulator, sdk } = e2e);
  sqs = e2e.aws.sqs;
});

after(async () => {
  await e2e?.stop();
});

const webhook = (path: string, params: Record<string, string>) => e2e.webhook(path, params);

/** Waits until the compliance function processed (and deleted) the queue record of `eventId`. */
const processed = (eventId: string) => e2e.processed("compliance", eventId, 20_000);

const inboundSms = async (from: string, body: string) => {
  const params = inboundSmsParams({ accountSid, from, to: Ours, body, mediaUrls: [] });
  const response = await webhook("/twilio/messaging/inbound", params);
  assert.equal(response.status, 200);
  await processed(`msg-in:${params.MessageSid}`);
  return params;
};

const inboundWhatsApp = async (from: string, body: string) => {
  const params = inboundWhatsAppParams({
    accountSid,
    from,
    to: Ours,
    body,
    mediaUrls: [],
    profileName: "Ana",
  });
  assert.equal((await webhook("/twilio/messaging/inbound", params)).status, 200);
  await processed(`msg-in:${params.MessageSid}`);
  return params;
};

const participantAdd = (address: string, proxy: string) =>
  webhook(
    "/twilio/conversations",
    preParticipantAddParams({ accountSid, conversationSid: sid("CH"), address, proxy }),
  );

const conversationWith = async (address: string, proxyAddress: string) => {
  const conversation = await sdk.conversations.v1.conversations.create({ friendlyName: "support" });
  await sdk.conversations.v1.conversations(conversation.sid).participants.create({
    "messagingBinding.address": address,
    "messagingBinding.proxyAddress": proxyAddress,
  });
  return conversation.sid;
};

/** Everything compliance forwarded to the mirror queue so far (read and deleted). */
const forwardedToMirror = async (): Promise<string[]> => {
  const eventIds: string[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.resources.queueUrls.mirror, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return eventIds;
    for (const message of Messages) {
      const envelope = parseEnvelope(message.Body ?? "");
      if (envelope.forwardedBy === "compliance") eventIds.push(envelope.eventId);
      await sqs.send(
        new DeleteMessageCommand({
          QueueUrl: stack.resources.queueUrls.mirror,
          ReceiptHandle: message.ReceiptHandle,
        }),
      );
    }
  }
};

const outboundTo = (to: string) =>
  emulator.state
    .outboundMessages()
    .filter((message) => message.to === to)
    .map((message) => message.body);

describe("opt-out compliance on the local stack", () => {
  const smsPerson = "+14155550101";

  test("a signed inbound SMS STOP removes the participant and a later onParticipantAdd is rejected", async () => {
    const conversationSid = await conversationWith(smsPerson, Ours);
    await inboundSms(smsPerson, "Stop");
    assert.deepEqual(emulator.state.participants(conversationSid), []);
    const [notice] = emulator.state.messages(conversationSid);
    assert.equal(notice?.author, "system");
    assert.equal(JSON.parse(notice?.attributes ?? "{}").kind, "compliance");
    assert.deepEqual(outboundTo(smsPerson), [], "Twilio's own STOP reply stands; we send nothing on SMS");

    const rejected = await participantAdd(smsPerson, Ours);
    assert.equal(rejected.status, 403);
    assert.equal(rejected.body.trim(), PreEventReasons.optedOut);
    assert.equal((await participantAdd("+14155550999", Ours)).status, 200, "other people can be added");
  });

  test("START lifts the suppression without re-adding the person to the old thread", async () => {
    await inboundSms(smsPerson, "START");
    assert.equal((await participantAdd(smsPerson, Ours)).status, 200);
    const threads = emulator.state
      .conversations()
      .filter((conversation) =>
        emulator.state
          .participants(conversation.sid)
          .some((participant) => participant.address === smsPerson),
      );
    assert.deepEqual(threads, []);
  });

  test("keywords are not mirrored; an ordinary message is, once, marked as forwarded by compliance", async () => {
    assert.deepEqual(await forwardedToMirror(), [], "STOP and START were answered, not mirrored");
    const hello = await inboundSms(smsPerson, "Is my order ready?");
    assert.deepEqual(await forwardedToMirror(), [`msg-in:${hello.MessageSid}`]);
  });

  test("WhatsApp: HELP is answered, STOP confirmed and enforced, START confirmed", async () => {
    const person = "+447700900123";
    const conversationSid = await conversationWith(`whatsapp:${person}`, `whatsapp:${Ours}`);
    await inboundWhatsApp(person, "help");
    await inboundWhatsApp(person, "STOP");
    assert.deepEqual(emulator.state.participants(conversationSid), []);
    assert.equal((await participantAdd(`whatsapp:${person}`, `whatsapp:${Ours}`)).status, 403);
    const ignored = await inboundWhatsApp(person, "hello? anyone?");
    await inboundWhatsApp(person, "start");
    assert.deepEqual(outboundTo(`whatsapp:${person}`), [
      DefaultComplianceTexts.helpText,
      DefaultComplianceTexts.optOutConfirmation,
      DefaultComplianceTexts.optInConfirmation,
    ]);
    assert.equal((await participantAdd(`whatsapp:${person}`, `whatsapp:${Ours}`)).status, 200);
    assert.equal((await forwardedToMirror()).includes(`msg-in:${ignored.MessageSid}`), false);
  });

  test("a 21610 status callback opts the recipient out and removes them", async () => {
    const person = "+14155550177";
    const conversationSid = await conversationWith(person, Ours);
    const messageSid = sid("SM");
    const params = statusParams({
      accountSid,
      messageSid,
      status: "failed",
      errorCode: "21610",
      from: Ours,
      to: person,
    });
    assert.equal((await webhook("/twilio/messaging/status", params)).status, 204);
    await processed(`msg-status:${messageSid}:failed`);
    assert.deepEqual(emulator.state.participants(conversationSid), []);
    assert.equal((await participantAdd(person, Ours)).status, 403);
    assert.deepEqual(outboundTo(person), [], "no confirmation for a delivery failure");
  });

  test("the onParticipantAdd check answers through the whole front door well inside Twilio's 5 s", async () => {
    const samples: number[] = [];
    for (let i = 0; i < 200; i += 1) {
      const started = performance.now();
      const response = await participantAdd(
        i % 2 === 0 ? "+14155550177" : `+1312555${String(i).padStart(4, "0")}`,
        Ours,
      );
      samples.push(performance.now() - started);
      assert.equal(response.status, i % 2 === 0 ? 403 : 200);
    }
    samples.sort((a, b) => a - b);
    const p50 = samples[Math.floor(samples.length * 0.5)] ?? Number.NaN;
    const p99 = samples[Math.floor(samples.length * 0.99)] ?? Number.NaN;
    console.log(
      `onParticipantAdd via the local front door: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    // The store lookup itself is held to p99 < 100 ms in test/integration/consent-store.test.ts; here
    // HTTP, signature verification and the local Lambda runner add their share on a shared CI machine.
    assert.ok(p99 < 1000, `p99 ${p99} ms`);
  });

  test("a poison record fails alone on every delivery, with its reason logged, until it lands in the DLQ", async () => {
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.resources.queueUrls.consent,
        MessageBody: "{not an envelope",
        MessageGroupId: "addr:poison",
        MessageDeduplicationId: "poison-1",
      }),
    );
    const deadline = Date.now() + 60_000;
    let dead: string[] = [];
    while (dead.length === 0 && Date.now() < deadline) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.resources.deadLetterQueueUrls.consent,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
      );
      dead = Messages.map((message) => message.MessageId ?? "");
    }
    assert.deepEqual(dead, [sent.MessageId]);
    const failures = complianceLogs.filter(
      (line) => line.msg === "compliance-record-failed" && line.messageId === sent.MessageId,
    );
    assert.equal(failures.length, 5, "one failure log per delivery (maxReceiveCount 5)");
    assert.equal(failures.at(-1)?.nextStop, "dead-letter-queue");
    assert.equal(failures[0]?.failureClass, "poison");
    assert.match(String(failures[0]?.reason), /not JSON/);
  });
});
