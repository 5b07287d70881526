// Mirroring end to end on the local stack: signed webhooks enter through the HTTP front door, the webhook
// bundle hands inbound messages to the consent queue, the compliance bundle forwards them to the mirror
// queue, and the mirror bundle writes threads into the Twilio emulator and its items into DynamoDB Local.
// Status callbacks and Conversations events go from the webhook straight to the mirror queue.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type twilio from "twilio";
import { consentStateReader } from "../../lib/adapters/consent-store.ts";
import { consentSuppressionCheck } from "../../lib/adapters/consent-suppression-check.ts";
import { dynamoMirrorLedger, dynamoThreadMappings } from "../../lib/adapters/conversation-mapping.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import { twilioMirrorPort } from "../../lib/adapters/mirror-twilio.ts";
import { RecipientOptedOutError } from "../../lib/app/errors.ts";
import type { OutboundSendDeps } from "../../lib/app/mirror/ports.ts";
import { sendOutbound } from "../../lib/app/mirror/send.ts";
import { DefaultMirrorSettings } from "../../lib/config/mirror-config.ts";
import { MirrorMarker } from "../../lib/domain/mirror.ts";
import { parseEnvelope } from "../../lib/domain/queue-envelope.ts";
import { emptyDirectory } from "../../lib/domain/tenants.ts";
import type { localClients } from "../../lib/local/provision.ts";
import { EmulatedTwilioAccount, type LocalStack } from "../../lib/local/stack.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import {
  inboundSmsParams,
  inboundWhatsAppParams,
  messageAddedParams,
  sid,
  stateUpdatedParams,
  statusParams,
} from "../../lib/local/twilio-webhooks.ts";
import { type E2eStack, startE2eStack } from "../support/e2e-stack.ts";

const Ours = EmulatedTwilioAccount.phoneNumber;
const { accountSid } = EmulatedTwilioAccount;

let e2e: E2eStack;
let stack: LocalStack;
let emulator: TwilioEmulator;
let sdk: ReturnType<typeof twilio>;
let aws: ReturnType<typeof localClients>;
let customerCounter = 0;

before(async () => {
  e2e = await startE2eStack(["webhook", "compliance", "mirror"], { visibilityTimeoutSeconds: 2 });
  ({ stack, emulator, sdk, aws } = e2e);
});

after(async () => {
  await e2e?.stop();
});

/** A customer no other test uses, so each test reads only its own thread. */
const newCustomer = () => {
  customerCounter += 1;
  return `+1415555${String(1000 + customerCounter)}`;
};
const threadName = (customer: string) => `t_default_sms_${customer.slice(1)}`;

const webhook = async (path: string, params: Record<string, string>) => {
  const response = await e2e.webhook(path, params);
  assert.equal(response.status < 300, true, `${path} answered ${response.status}`);
};

/** Resolves once the mirror processed (and deleted) the queue record of `eventId` successfully. */
const mirrored = (eventId: string) => e2e.processed("mirror", eventId, 30_000);

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

/** What the project's send helper needs, on the stack's DynamoDB and the emulator. */
const sendDeps = (): OutboundSendDeps => {
  const table = stack.resources.tableNames.conversations;
  return {
    twilio: twilioMirrorPort(async () => sdk),
    threads: dynamoThreadMappings(aws.dynamodb, table),
    ledger: dynamoMirrorLedger(aws.dynamodb, table),
    registry: dynamoConversationRegistry(aws.dynamodb, table),
    tenants: emptyDirectory,
    settingsFor: () => DefaultMirrorSettings,
    now: Date.now,
    consent: consentSuppressionCheck({
      reader: consentStateReader({ client: aws.dynamodb, tableName: stack.resources.tableNames.consent }),
    }),
  };
};

/** A status callback for `messageSid`, through the webhook, processed by the mirror. */
const statusCallback = async (
  messageSid: string,
  from: string,
  to: string,
  status: string,
  errorCode?: string,
) => {
  const params = statusParams({
    accountSid,
    messageSid,
    status,
    from,
    to,
    ...(errorCode === undefined ? {} : { errorCode }),
  });
  await webhook("/twilio/messaging/status", params);
  await mirrored(`msg-status:${messageSid}:${status}`);
};

/** Conversations reports how it delivered one of its messages (the emulator sends no webhooks itself). */
const deliveryUpdated = async (conversationSid: string, messageSid: string, status: string) => {
  const dateUpdated = new Date().toISOString();
  const receipt = sid("DY");
  await webhook("/twilio/conversations", {
    AccountSid: accountSid,
    EventType: "onDeliveryUpdated",
    Source: "API",
    RetryCount: "0",
    WebhookType: "webhook",
    ChatServiceSid: emulator.state.chatServiceSid(),
    ConversationSid: conversationSid,
    MessageSid: messageSid,
    DeliveryReceiptSid: receipt,
    ChannelMessageSid: sid("SM"),
    ParticipantSid: emulator.state.participants(conversationSid)[0]?.sid ?? sid("MB"),
    Status: status,
    ErrorCode: "0",
    DateCreated: dateUpdated,
    DateUpdated: dateUpdated,
  });
  await mirrored(`onDeliveryUpdated:${receipt}:${status}:${dateUpdated}`);
};
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
    // The project's send helper: no thread yet, so a Messaging API send + the template recorded.
    const sent = await sendOutbound(sendDeps(), {
      to: customer,
      from: sender,
      contentSid,
      contentVariables: '{"1":"Ada"}',
      statusCallback: `${stack.stackInfo.publicWebhookBaseUrl}/twilio/messaging/status`,
    });
    assert.equal(sent.via, "messaging");
    const sentSid = sent.via === "messaging" ? sent.sid : "";
    const callback = (status: string) => statusCallback(sentSid, sender, customer, status);
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
      messagingMessageSid: sentSid,
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

describe("outbound to a customer bound in their thread (never delivered twice)", () => {
  test("a template send is posted into the bound WhatsApp thread once and never sent through the Messaging API", async () => {
    const number = newCustomer();
    const customer = `whatsapp:${number}`;
    const sender = `whatsapp:${Ours}`;
    const contentSid = `HX${"a".repeat(32)}`;
    const hello = inboundWhatsAppParams({
      accountSid,
      from: number,
      to: Ours,
      body: "Is my table booked?",
      mediaUrls: [],
      profileName: "Ada",
    });
    await webhook("/twilio/messaging/inbound", hello);
    await mirrored(`msg-in:${hello.MessageSid}`);
    const conversation = emulator.state.conversation(`t_default_whatsapp_${number.slice(1)}`);
    assert.ok(conversation);
    assert.deepEqual(
      emulator.state.participants(conversation.sid).map((p) => [p.address, p.proxyAddress]),
      [[customer, sender]],
      "the customer is bound: Twilio delivers every post in this thread to them",
    );

    const sent = await sendOutbound(sendDeps(), {
      to: customer,
      from: sender,
      contentSid,
      contentVariables: '{"1":"Ada"}',
      author: "acme-support",
    });
    assert.equal(sent.via, "conversation");
    const messageSid = sent.via === "conversation" ? sent.messageSid : "";

    const messages = emulator.state.messages(conversation.sid);
    assert.deepEqual(
      messages.map((m) => [m.author, m.contentSid]),
      [
        [customer, null],
        ["acme-support", contentSid],
      ],
      "the template is in the thread once",
    );
    assert.equal(messages[1]?.sid, messageSid);
    assert.equal(messages[1]?.contentVariables, '{"1":"Ada"}');
    // The emulator does not model Conversations' deliveries, so "once" is asserted as: the post is the
    // only copy (Conversations delivers it), and the Messaging API never sent the customer anything.
    assert.deepEqual(
      emulator.state.outboundMessages().filter((m) => m.to === customer),
      [],
      "no Messaging API send to the customer",
    );

    await deliveryUpdated(conversation.sid, messageSid, "read");
    await deliveryUpdated(conversation.sid, messageSid, "delivered");
    const { sendId, ...attributes } = JSON.parse(
      emulator.state.messages(conversation.sid)[1]?.attributes ?? "{}",
    );
    assert.equal(typeof sendId, "string");
    assert.deepEqual(attributes, {
      mirroredBy: MirrorMarker,
      direction: "outbound",
      outbound: true,
      template: contentSid,
      status: "read",
      errorCode: null,
    });
    assert.equal(emulator.state.messages(conversation.sid).length, 2);
  });

  test("a Messaging-API send by another system is listed on the conversation, never posted", async () => {
    const customer = newCustomer();
    await inbound(customer, "hello");
    const conversation = thread(customer);
    const before = JSON.parse(conversation.attributes);
    const foreign = await sdk.messages.create({ to: customer, from: Ours, body: "Your parcel is out" });

    await statusCallback(foreign.sid, Ours, customer, "delivered");
    await statusCallback(foreign.sid, Ours, customer, "sent");
    await statusCallback(foreign.sid, Ours, customer, "undelivered", "30003");

    assert.deepEqual(bodies(conversation.sid), ["hello"], "no copy: the customer would receive it twice");
    const after = JSON.parse(thread(customer).attributes);
    const [entry, ...rest] = after.outboundNotMirrored ?? [];
    assert.equal(rest.length, 0);
    assert.deepEqual(
      [entry?.messagingMessageSid, entry?.status, entry?.errorCode, entry?.template],
      [foreign.sid, "delivered", null, null],
      "monotonic: a late sent or undelivered does not undo delivered",
    );
    assert.deepEqual(
      { ...after, outboundNotMirrored: undefined },
      { ...before, outboundNotMirrored: undefined },
    );
  });
});

describe("outbound to a customer who opted out", () => {
  test("after STOP through the front door sendOutbound sends nothing; after START it sends again", async () => {
    const customer = newCustomer();
    await inbound(customer, "Hi");
    const conversation = thread(customer);
    const keyword = async (body: string) => {
      const params = await sendInbound(customer, body);
      await e2e.processed("compliance", `msg-in:${params.MessageSid}`, 30_000);
    };
    const send = () => sendOutbound(sendDeps(), { to: customer, from: Ours, body: "Your table is ready" });
    const sentToCustomer = () => emulator.state.outboundMessages().filter((m) => m.to === customer);

    await keyword("STOP");
    await assert.rejects(send(), RecipientOptedOutError);
    assert.deepEqual(sentToCustomer(), [], "nothing through the Messaging API");
    assert.equal(
      bodies(conversation.sid).includes("Your table is ready"),
      false,
      "nothing posted into the thread",
    );

    await keyword("START");
    const sent = await send();
    assert.equal(sent.via, "messaging", "the STOP removed them from the thread; START re-adds nobody");
    assert.deepEqual(
      sentToCustomer().map((m) => m.body),
      ["Your table is ready"],
    );
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
