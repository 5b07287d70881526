// Mirroring end to end on the local stack: signed webhooks enter through the HTTP front door, the webhook
// bundle hands inbound messages to the consent queue, the compliance bundle forwards them to the mirror
// queue, and the mirror bundle writes threads into the Twilio emulator and its items into DynamoDB Local.
// Status callbacks and Conversations events go from the webhook straight to the mirror queue.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import twilio from "twilio";
import { dynamoMirrorLedger } from "../../lib/adapters/conversation-mapping.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import { twilioMirrorPort } from "../../lib/adapters/mirror-twilio.ts";
import { sendOutbound } from "../../lib/app/mirror.ts";
import { MirrorMarker } from "../../lib/domain/mirror.ts";
import { parseEnvelope } from "../../lib/domain/queue-envelope.ts";
import { emptyDirectory } from "../../lib/domain/tenants.ts";
import { localClients } from "../../lib/local/provision.ts";
import { EmulatedTwilioAccount, type LocalStack, startLocalStack } from "../../lib/local/stack.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import {
  encodeForm,
  inboundSmsParams,
  messageAddedParams,
  signatureFor,
  stateUpdatedParams,
  statusParams,
  twilioHeaders,
} from "../../lib/local/twilio-webhooks.ts";
import { buildFunction } from "../../lib/tools/build.ts";

const Ours = EmulatedTwilioAccount.phoneNumber;
const { accountSid, authToken } = EmulatedTwilioAccount;

let stack: LocalStack;
let emulator: TwilioEmulator;
let sdk: ReturnType<typeof twilio>;
let aws: ReturnType<typeof localClients>;
let customerCounter = 0;

before(async () => {
  // `npm test` builds every bundle first; a lone run of this file builds what is missing.
  for (const name of ["webhook", "compliance", "mirror"] as const) {
    if (!existsSync(`dist/functions/${name}/index.mjs`)) await buildFunction(name);
  }
  stack = await startLocalStack({
    port: 0,
    schedules: false,
    queueDepthIntervalMs: 0,
    visibilityTimeoutSeconds: 2,
  });
  if (stack.twilioEmulator === undefined) throw new Error("the stack should run the Twilio emulator");
  emulator = stack.twilioEmulator;
  sdk = twilio(accountSid, authToken, { autoRetry: false });
  sdk.conversations.baseUrl = emulator.url;
  sdk.api.baseUrl = emulator.url;
  aws = localClients({
    dynamodb: stack.stackInfo.aws.dynamodbEndpoint,
    sqs: stack.stackInfo.aws.sqsEndpoint,
  });
});

after(async () => {
  aws?.dynamodb.destroy();
  aws?.sqs.destroy();
  await stack?.stop();
});

/** A customer no other test uses, so each test reads only its own thread. */
const newCustomer = () => {
  customerCounter += 1;
  return `+1415555${String(1000 + customerCounter)}`;
};
const threadName = (customer: string) => `t_default_sms_${customer.slice(1)}`;

const webhook = async (path: string, params: Record<string, string>) => {
  const signature = signatureFor(authToken, `${stack.stackInfo.publicWebhookBaseUrl}${path}`, params);
  const response = await fetch(`${stack.apiUrl}${path}`, {
    method: "POST",
    headers: twilioHeaders(signature),
    body: encodeForm(params),
  });
  await response.text();
  assert.equal(response.status < 300, true, `${path} answered ${response.status}`);
};

/** Resolves once the mirror processed (and deleted) the queue record of `eventId` successfully. */
const mirrored = (eventId: string) =>
  stack.waitForInvocation(
    (record) =>
      record.functionName === "mirror" &&
      record.batch !== undefined &&
      record.batch.records.some(
        (message) =>
          parseEnvelope(message.body).eventId === eventId &&
          record.batch?.deleted.includes(message.messageId),
      ),
    30_000,
  );

const sendInbound = async (from: string, body: string) => {
  const params = inboundSmsParams({ accountSid, from, to: Ours, body, mediaUrls: [] });
  await webhook("/twilio/messaging/inbound", params);
  return params;
};

const inbound = async (from: string, body: string) => {
  const params = await sendInbound(from, body);
  await mirrored(`msg-in:${params.MessageSid}`);
  return params;
};

const thread = (customer: string, generation = 1) => {
  const name = generation === 1 ? threadName(customer) : `${threadName(customer)}_g${generation}`;
  const conversation = emulator.state.conversation(name);
  assert.ok(conversation, `thread ${name} exists`);
  return conversation;
};

const bodies = (conversationSid: string) => emulator.state.messages(conversationSid).map((m) => m.body);
const threadsOf = (customer: string) =>
  emulator.state.conversations().filter((c) => c.uniqueName?.startsWith(threadName(customer)));

describe("inbound mirroring", () => {
  test("the first message creates the thread and the second reuses it", async () => {
    const customer = newCustomer();
    const first = await inbound(customer, "Hi, is my order on its way?");
    const conversation = thread(customer);
    assert.deepEqual(
      emulator.state.participants(conversation.sid).map((p) => [p.address, p.proxyAddress]),
      [[customer, Ours]],
    );
    const [message] = emulator.state.messages(conversation.sid);
    assert.equal(message?.author, customer);
    assert.equal(message?.participantSid, emulator.state.participants(conversation.sid)[0]?.sid);
    assert.equal(JSON.parse(message?.attributes ?? "{}").messagingMessageSid, first.MessageSid);
    assert.deepEqual(JSON.parse(conversation.attributes), {
      mirroredBy: MirrorMarker,
      tenantId: "default",
      channel: "sms",
      generation: 1,
    });

    await inbound(customer, "Order 1234");
    assert.equal(threadsOf(customer).length, 1);
    assert.deepEqual(bodies(conversation.sid), ["Hi, is my order on its way?", "Order 1234"]);

    const registry = await dynamoConversationRegistry(
      aws.dynamodb,
      stack.resources.tableNames.conversations,
    ).get(conversation.sid);
    assert.deepEqual([registry?.tenantId, registry?.state], ["default", "active"]);
  });

  test("20 concurrent first messages create exactly one conversation holding all 20 once", async () => {
    const customer = newCustomer();
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sendInbound(customer, `burst ${String(i).padStart(2, "0")}`)),
    );
    await Promise.all(sent.map((params) => mirrored(`msg-in:${params.MessageSid}`)));
    assert.equal(threadsOf(customer).length, 1);
    const received = bodies(thread(customer).sid);
    assert.deepEqual([...received].sort(), sent.map((params) => params.Body).sort());
  });

  test("20 messages sent one after another appear in the order they were sent", async () => {
    const customer = newCustomer();
    const sent: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      const params = await sendInbound(customer, `in order ${i}`);
      sent.push(params.MessageSid ?? "");
    }
    await Promise.all(sent.map((messageSid) => mirrored(`msg-in:${messageSid}`)));
    assert.deepEqual(
      bodies(thread(customer).sid),
      Array.from({ length: 20 }, (_, i) => `in order ${i}`),
    );
  });

  test("redelivery of the webhook or of the mirror's queue record posts nothing new", async () => {
    const customer = newCustomer();
    const params = await inbound(customer, "only once");
    // Twilio retries the webhook: intake's dedupe drops it.
    await webhook("/twilio/messaging/inbound", params);
    // The same record reaches the mirror again (redrive from the DLQ, or a second delivery by SQS).
    const envelope = {
      v: 1,
      eventId: `msg-in:${params.MessageSid}`,
      kind: "messaging.inbound",
      receivedAt: Date.now(),
      params,
      forwardedBy: "compliance",
    };
    await aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.resources.queueUrls.mirror,
        MessageBody: JSON.stringify(envelope),
        MessageGroupId: `addr:${customer}`,
        MessageDeduplicationId: `redelivery-${params.MessageSid}`,
      }),
    );
    await stack.waitForInvocation(
      (record) =>
        record.functionName === "mirror" &&
        record.batch?.records.some(
          (message) =>
            parseEnvelope(message.body).receivedAt === envelope.receivedAt &&
            record.batch?.deleted.includes(message.messageId),
        ) === true,
      30_000,
    );
    assert.deepEqual(bodies(thread(customer).sid), ["only once"]);
  });

  test("a closed thread is replaced by a fresh one", async () => {
    const customer = newCustomer();
    await inbound(customer, "before closing");
    const closed = thread(customer);
    await sdk.conversations.v1.conversations(closed.sid).update({ state: "closed" });

    await inbound(customer, "after closing");
    const fresh = thread(customer, 2);
    assert.notEqual(fresh.sid, closed.sid);
    assert.deepEqual(bodies(closed.sid), ["before closing"]);
    assert.deepEqual(bodies(fresh.sid), ["after closing"]);
    assert.deepEqual(
      emulator.state.participants(fresh.sid).map((p) => [p.address, p.proxyAddress]),
      [[customer, Ours]],
      "closing released the binding, so the new thread binds the customer again",
    );
  });
});

describe("outbound mirroring", () => {
  test("a WhatsApp template send and its callbacks appear in the thread, ending in the best status", async () => {
    const customer = `whatsapp:${newCustomer()}`;
    const sender = `whatsapp:${Ours}`;
    const contentSid = `HX${"e".repeat(32)}`;
    // The project's send helper: Messaging API send + the template recorded for the mirror.
    const sent = await sendOutbound(
      {
        twilio: twilioMirrorPort(async () => sdk),
        ledger: dynamoMirrorLedger(aws.dynamodb, stack.resources.tableNames.conversations),
        tenants: emptyDirectory,
        now: Date.now,
      },
      {
        to: customer,
        from: sender,
        contentSid,
        contentVariables: '{"1":"Ada"}',
        statusCallback: `${stack.stackInfo.publicWebhookBaseUrl}/twilio/messaging/status`,
      },
    );
    const callback = async (status: string, errorCode?: string) => {
      const params = statusParams({
        accountSid,
        messageSid: sent.sid,
        status,
        from: sender,
        to: customer,
        ...(errorCode === undefined ? {} : { errorCode }),
      });
      await webhook("/twilio/messaging/status", params);
      await mirrored(`msg-status:${sent.sid}:${status}`);
    };
    const attributes = () => {
      const conversation = emulator.state.conversation(
        `t_default_whatsapp_${customer.slice("whatsapp:+".length)}`,
      );
      assert.ok(conversation, "the template opened the customer's WhatsApp thread");
      const messages = emulator.state.messages(conversation.sid);
      assert.equal(messages.length, 1, "one system message, updated in place");
      assert.equal(messages[0]?.author, "system");
      return JSON.parse(messages[0]?.attributes ?? "{}");
    };

    await callback("sent");
    assert.deepEqual(attributes(), {
      mirroredBy: MirrorMarker,
      direction: "outbound",
      channel: "whatsapp",
      messagingMessageSid: sent.sid,
      template: contentSid,
      status: "sent",
      errorCode: null,
    });
    const whatsappThread = emulator.state.conversation(
      `t_default_whatsapp_${customer.slice("whatsapp:+".length)}`,
    );
    assert.deepEqual(
      emulator.state
        .participants(whatsappThread?.sid ?? "")
        .map((p) => [p.address, p.proxyAddress, p.channel]),
      [[customer, sender, "whatsapp"]],
      "bound after the copy was posted, so the customer's reply lands in this thread",
    );
    await callback("read");
    await callback("delivered");
    assert.equal(attributes().status, "read", "a late delivered does not undo read");
  });
});

describe("Conversations events", () => {
  test("our own messages do not come back as work; state changes reach the registry", async () => {
    const customer = newCustomer();
    await inbound(customer, "hello");
    const conversation = thread(customer);
    const [ours] = emulator.state.messages(conversation.sid);
    const echo = {
      ...messageAddedParams({
        accountSid,
        conversationSid: conversation.sid,
        author: customer,
        body: "hello",
        index: 0,
      }),
      MessageSid: ours?.sid ?? "",
      Attributes: ours?.attributes ?? "{}",
    };
    await webhook("/twilio/conversations", echo);
    await mirrored(`onMessageAdded:${echo.MessageSid}`);
    assert.deepEqual(bodies(conversation.sid), ["hello"]);

    const closed = stateUpdatedParams({
      accountSid,
      conversationSid: conversation.sid,
      from: "active",
      to: "closed",
      reason: "TIMER",
    });
    await webhook("/twilio/conversations", closed);
    await mirrored(`onConversationStateUpdated:${conversation.sid}:closed:${closed.StateUpdated}`);
    const row = await dynamoConversationRegistry(aws.dynamodb, stack.resources.tableNames.conversations).get(
      conversation.sid,
    );
    assert.deepEqual([row?.state, row?.closeOutcome], ["closed", "timer"]);
  });
});

// Last on purpose: a record that failed and then succeeded on SQS's retry would pass every test above.
test("no mirror record failed along the way", () => {
  const retained = stack.invocations
    .filter((record) => record.functionName === "mirror")
    .flatMap((record) => record.batch?.retained ?? []);
  assert.deepEqual(retained, []);
});
