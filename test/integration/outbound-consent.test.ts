// `sendOutbound` asks the consent table before it sends, on DynamoDB Local with the Twilio emulator
// behind the real SDK: opt-outs are written by the compliance use case through the DynamoDB consent
// store (the tenant's scope and event time decide, as in production) and read back by the suppression
// check, so what compliance records is exactly what the send path refuses.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import twilio from "twilio";
import { consentStateReader, dynamoConsentStore } from "../../lib/adapters/consent-store.ts";
import { consentSuppressionCheck } from "../../lib/adapters/consent-suppression-check.ts";
import { dynamoMirrorLedger, dynamoThreadMappings } from "../../lib/adapters/conversation-mapping.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import { twilioMirrorPort } from "../../lib/adapters/mirror-twilio.ts";
import { type ComplianceDeps, type ConsentReport, handleConsentEnvelope } from "../../lib/app/compliance.ts";
import { ConsentUnavailableError, RecipientOptedOutError } from "../../lib/app/errors.ts";
import type { OutboundSend, OutboundSendDeps, RecipientConsent } from "../../lib/app/mirror/ports.ts";
import { sendOutbound } from "../../lib/app/mirror/send.ts";
import { complianceSettingsLookup } from "../../lib/config/compliance-config.ts";
import { DefaultMirrorSettings } from "../../lib/config/mirror-config.ts";
import type { TenantDirectory } from "../../lib/domain/tenants.ts";
import {
  routeTwilioClientTo,
  startTwilioEmulator,
  type TwilioEmulator,
} from "../../lib/local/twilio-emulator/server.ts";
import { type LocalAws, localAws } from "../support/local-aws.ts";

const AccountSid = `AC${"7".repeat(32)}`;
const AuthToken = "outbound-consent-token";
/** Acme keeps opt-outs per sender; Globex for all its senders. */
const Acme = ["+15005550006", "+15005550007"] as const;
const Globex = ["+15005550010", "+15005550011"] as const;
const directory: TenantDirectory = {
  defaultTenant: "acme",
  senders: { [Acme[0]]: "acme", [Acme[1]]: "acme", [Globex[0]]: "globex", [Globex[1]]: "globex" },
  tenants: { acme: { compliance: { scope: "sender" } }, globex: { compliance: { scope: "all" } } },
};
const T0 = Date.UTC(2026, 5, 1, 12);

let aws: LocalAws;
let emulator: TwilioEmulator;
let sdk: ReturnType<typeof twilio>;
let compliance: ComplianceDeps;
let consent: RecipientConsent;
let people = 0;

before(async () => {
  aws = await localAws();
  emulator = await startTwilioEmulator({
    accountSid: AccountSid,
    authToken: AuthToken,
    phoneNumbers: [...Acme, ...Globex],
    now: () => T0,
  });
  sdk = twilio(AccountSid, AuthToken, { autoRetry: false });
  routeTwilioClientTo(sdk, emulator.url);
  const tableName = aws.resources.tableNames.consent;
  compliance = {
    tenants: directory,
    settings: complianceSettingsLookup(directory),
    store: dynamoConsentStore({ client: aws.clients.dynamodb, tableName }),
    // Nobody is in a conversation and replies are not under test: Twilio is out of the picture here.
    twilio: {
      conversationsOf: async () => [],
      participant: async () => undefined,
      removeParticipant: async () => "already-gone",
      postNotice: async () => undefined,
      sendText: async () => "sent",
    },
    queue: { send: async () => undefined },
    now: () => T0,
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  };
  consent = consentSuppressionCheck({
    reader: consentStateReader({ client: aws.clients.dynamodb, tableName }),
  });
});

after(() => emulator?.stop());

beforeEach(() => emulator.reset());

const newPerson = () => {
  people += 1;
  return `+1415777${String(people).padStart(4, "0")}`;
};

const sendDeps = (check: RecipientConsent = consent): OutboundSendDeps => {
  const table = aws.resources.tableNames.conversations;
  return {
    twilio: twilioMirrorPort(async () => sdk),
    threads: dynamoThreadMappings(aws.clients.dynamodb, table),
    ledger: dynamoMirrorLedger(aws.clients.dynamodb, table),
    registry: dynamoConversationRegistry(aws.clients.dynamodb, table),
    tenants: directory,
    settingsFor: () => DefaultMirrorSettings,
    now: () => T0,
    consent: check,
  };
};

/** `person` texts `body` to our number `to`; intake received it at `receivedAt` (its event time). */
const texts = async (
  person: string,
  to: string,
  body: string,
  receivedAt: number,
): Promise<ConsentReport> => {
  const messageSid = `SM${String(people).padStart(8, "0")}${String(receivedAt).padStart(24, "0")}`;
  return handleConsentEnvelope(
    compliance,
    {
      v: 1,
      eventId: `msg-in:${messageSid}`,
      kind: "messaging.inbound",
      receivedAt,
      params: { MessageSid: messageSid, From: person, To: to, Body: body, AccountSid },
    },
    { receiveCount: 1, remainingMs: () => 30_000 },
  );
};

const refused = async (send: OutboundSend) => {
  await assert.rejects(sendOutbound(sendDeps(), send), RecipientOptedOutError);
};

const sentTo = (person: string) => emulator.state.outboundMessages().filter((m) => m.to === person);

describe("sendOutbound against the consent table compliance writes", () => {
  test("after a STOP nothing is sent; after a START later in event time the send goes out", async () => {
    const person = newPerson();
    assert.equal((await texts(person, Acme[0], "STOP", T0)).outcome, "opted-out");
    const sender = { proxy: Acme[0], messagingServiceSid: undefined };
    assert.equal(
      await consent.isSuppressed({ tenantId: "acme", channel: "sms", address: person, sender }),
      true,
    );
    await refused({ to: person, from: Acme[0], body: "Your table is ready" });
    assert.deepEqual(sentTo(person), []);

    assert.equal((await texts(person, Acme[0], "START", T0 + 1_000)).outcome, "opted-in");
    assert.equal(
      await consent.isSuppressed({ tenantId: "acme", channel: "sms", address: person, sender }),
      false,
    );
    const sent = await sendOutbound(sendDeps(), { to: person, from: Acme[0], body: "Your table is ready" });
    assert.equal(sent.via, "messaging");
    assert.deepEqual(
      sentTo(person).map((m) => [m.from, m.body]),
      [[Acme[0], "Your table is ready"]],
    );
  });

  test("a START older in event time than the STOP, processed after it, reopens nothing", async () => {
    const person = newPerson();
    await texts(person, Acme[0], "STOP", T0 + 5_000);
    assert.equal((await texts(person, Acme[0], "START", T0 + 1_000)).outcome, "superseded");
    await refused({ to: person, from: Acme[0], body: "hi" });
    assert.deepEqual(sentTo(person), []);
  });

  test('scope "sender": another Acme number may still send; scope "all": no Globex number may', async () => {
    const acmeCustomer = newPerson();
    await texts(acmeCustomer, Acme[0], "STOP", T0);
    await refused({ to: acmeCustomer, from: Acme[0], body: "hi" });
    await sendOutbound(sendDeps(), { to: acmeCustomer, from: Acme[1], body: "hi" });
    assert.deepEqual(
      sentTo(acmeCustomer).map((m) => m.from),
      [Acme[1]],
    );

    const globexCustomer = newPerson();
    await texts(globexCustomer, Globex[0], "STOP", T0);
    await refused({ to: globexCustomer, from: Globex[0], body: "hi" });
    await refused({ to: globexCustomer, from: Globex[1], body: "hi" });
    assert.deepEqual(sentTo(globexCustomer), []);
    await sendOutbound(sendDeps(), {
      to: `whatsapp:${globexCustomer}`,
      from: `whatsapp:${Globex[1]}`,
      body: "hi",
    });
    assert.equal(sentTo(`whatsapp:${globexCustomer}`).length, 1, "an SMS opt-out leaves WhatsApp alone");
  });

  test("a consent table that cannot answer refuses the send: nothing reaches Twilio", async () => {
    const broken = new DynamoDBClient({
      region: "us-east-1",
      endpoint: aws.endpoints.dynamodb,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const unavailable = consentSuppressionCheck({
      reader: consentStateReader({ client: broken, tableName: "no-such-table" }),
    });
    const person = newPerson();
    const error = await sendOutbound(sendDeps(unavailable), { to: person, from: Acme[0], body: "hi" }).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof ConsentUnavailableError, `got ${String(error)}`);
    assert.equal(error.cause instanceof Error && error.cause.name, "ResourceNotFoundException");
    assert.deepEqual(sentTo(person), []);
    broken.destroy();
  });
});
