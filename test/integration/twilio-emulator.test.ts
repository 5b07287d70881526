// The local Twilio emulator, driven through the real `twilio` SDK (only the base URLs changed) and raw
// HTTP where the SDK cannot go (misspelt parameters). Proves the Twilio behaviours the backbone relies
// on — 50353/50416/50433/50437, binding release on close, paging, 20429 retries — and that the emulator
// stays honest: requests and responses are checked against Twilio's OpenAPI specs.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import twilio from "twilio";
import { loadTwilioOpenApi } from "../../lib/local/twilio-emulator/openapi.ts";
import {
  type RequestLogEntry,
  routeTwilioClientTo,
  startTwilioEmulator,
  type TwilioEmulator,
} from "../../lib/local/twilio-emulator/server.ts";

const ACCOUNT_SID = `AC${"1".repeat(32)}`;
const AUTH_TOKEN = "emulator-auth-token";
const API_KEY_SID = `SK${"2".repeat(32)}`;
const API_KEY_SECRET = "emulator-api-key-secret";
const PROXY_NUMBER = "+15550000001";
const CUSTOMER = "+15557654321";

type Client = ReturnType<typeof twilio>;

function clientFor(emulator: TwilioEmulator, options: { token?: string; autoRetry?: boolean } = {}): Client {
  const client = twilio(ACCOUNT_SID, options.token ?? AUTH_TOKEN, {
    autoRetry: options.autoRetry ?? false,
    maxRetries: 3,
  });
  routeTwilioClientTo(client, emulator.url);
  return client;
}

/** Awaits a promise expected to fail with a Twilio RestException and returns it. */
async function restError(promise: Promise<unknown>): Promise<InstanceType<typeof twilio.RestException>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof twilio.RestException) return error;
    throw error;
  }
  assert.fail("expected a Twilio RestException");
}

/** Raw form POST/GET with valid credentials, for requests the SDK refuses to build. */
async function raw(
  emulator: TwilioEmulator,
  method: string,
  path: string,
  form?: Record<string, string>,
  credentials = `${ACCOUNT_SID}:${AUTH_TOKEN}`,
): Promise<{ status: number; body: { code?: number; message?: string } }> {
  const response = await fetch(`${emulator.url}${path}`, {
    method,
    headers: {
      Authorization: `Basic ${Buffer.from(credentials).toString("base64")}`,
      ...(form === undefined ? {} : { "Content-Type": "application/x-www-form-urlencoded" }),
    },
    body: form === undefined ? undefined : new URLSearchParams(form).toString(),
  });
  const json: unknown = response.status === 204 ? {} : await response.json();
  return { status: response.status, body: errorFields(json) };
}

function errorFields(json: unknown): { code?: number; message?: string } {
  if (typeof json !== "object" || json === null) return {};
  return {
    code: "code" in json && typeof json.code === "number" ? json.code : undefined,
    message: "message" in json && typeof json.message === "string" ? json.message : undefined,
  };
}

describe("twilio emulator", () => {
  let emulator: TwilioEmulator;
  let client: Client;
  let clock = Date.parse("2026-01-01T12:00:00Z");
  const log: RequestLogEntry[] = [];

  before(async () => {
    emulator = await startTwilioEmulator({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      apiKeys: { [API_KEY_SID]: API_KEY_SECRET },
      phoneNumbers: [PROXY_NUMBER],
      now: () => clock,
      onRequest: (entry) => log.push(entry),
    });
    client = clientFor(emulator);
    const { ms, sources } = emulator.specLoad;
    console.log(`spec load: ${ms} ms (${JSON.stringify(sources)})`);
  });

  after(async () => {
    await emulator.stop();
  });

  beforeEach(() => {
    emulator.reset();
    log.length = 0;
  });

  describe("conversations", () => {
    it("creates a conversation and fetches it by SID and by unique name", async () => {
      const created = await client.conversations.v1.conversations.create({
        uniqueName: "tenant-a:+15557654321",
        friendlyName: "Customer",
        attributes: JSON.stringify({ tenant: "a" }),
      });
      assert.match(created.sid, /^CH[0-9a-f]{32}$/);
      assert.equal(created.state, "active");
      assert.equal(created.chatServiceSid, emulator.state.chatServiceSid());

      const bySid = await client.conversations.v1.conversations(created.sid).fetch();
      const byName = await client.conversations.v1.conversations("tenant-a:+15557654321").fetch();
      assert.equal(bySid.sid, created.sid);
      assert.equal(byName.sid, created.sid);
      assert.deepEqual(JSON.parse(byName.attributes), { tenant: "a" });
    });

    it("lists across pages by following meta.next_page_url", async () => {
      for (let i = 0; i < 5; i += 1) {
        await client.conversations.v1.conversations.create({ uniqueName: `paged-${i}` });
      }
      const all = await client.conversations.v1.conversations.list({ pageSize: 2 });
      assert.deepEqual(
        all.map((c) => c.uniqueName),
        ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"],
      );
      const pageRequests = log.filter((entry) => entry.operationId === "ListConversation");
      assert.equal(pageRequests.length, 3, "5 conversations at PageSize 2 are 3 pages");

      const firstPage = await client.conversations.v1.conversations.page({ pageSize: 2 });
      assert.equal(firstPage.instances.length, 2);
      assert.match(firstPage.nextPageUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\/v1\/Conversations\?.*Page=1/);
    });

    it("filters the list by State", async () => {
      const open = await client.conversations.v1.conversations.create({ uniqueName: "open" });
      const done = await client.conversations.v1.conversations.create({ uniqueName: "done" });
      await client.conversations.v1.conversations(done.sid).update({ state: "closed" });
      const closed = await client.conversations.v1.conversations.list({ state: "closed" });
      assert.deepEqual(
        closed.map((c) => c.sid),
        [done.sid],
      );
      const active = await client.conversations.v1.conversations.list({ state: "active" });
      assert.deepEqual(
        active.map((c) => c.sid),
        [open.sid],
      );
    });

    it("updates state and timers, and a closed conversation is final (50377)", async () => {
      const conversation = await client.conversations.v1.conversations.create({ uniqueName: "lifecycle" });
      clock += 60_000;
      const inactive = await client.conversations.v1.conversations(conversation.sid).update({
        state: "inactive",
        "timers.closed": "PT30M",
      });
      assert.equal(inactive.state, "inactive");
      assert.deepEqual(inactive.timers, { date_closed: "2026-01-01T12:31:00Z" });
      assert.ok(inactive.dateUpdated > conversation.dateUpdated, "a mutation moves date_updated");

      const closed = await client.conversations.v1.conversations("lifecycle").update({ state: "closed" });
      assert.equal(closed.state, "closed");
      const error = await restError(
        client.conversations.v1.conversations(conversation.sid).update({ friendlyName: "too late" }),
      );
      assert.equal(error.code, 50377);
      assert.equal(error.status, 400);
    });

    it("closes a conversation when its Timers.Closed elapses", async () => {
      const conversation = await client.conversations.v1.conversations.create({
        state: "active",
        "timers.closed": "PT10M",
      });
      clock += 9 * 60_000;
      assert.equal(emulator.state.conversation(conversation.sid)?.state, "active");
      clock += 2 * 60_000;
      const fetched = await client.conversations.v1.conversations(conversation.sid).fetch();
      assert.equal(fetched.state, "closed");
    });

    it("rejects timers without State at create (50382) and a Timers.Closed under 10 minutes (50376)", async () => {
      const noState = await restError(
        client.conversations.v1.conversations.create({ "timers.closed": "PT1H" }),
      );
      assert.equal(noState.code, 50382);
      const tooShort = await restError(
        client.conversations.v1.conversations.create({ state: "active", "timers.closed": "PT5M" }),
      );
      assert.equal(tooShort.code, 50376);
    });

    it("deletes a conversation, after which it is 404 / 20404", async () => {
      const conversation = await client.conversations.v1.conversations.create({ uniqueName: "doomed" });
      assert.equal(await client.conversations.v1.conversations(conversation.sid).remove(), true);
      const error = await restError(client.conversations.v1.conversations(conversation.sid).fetch());
      assert.equal(error.status, 404);
      assert.equal(error.code, 20404);
      assert.equal(error.moreInfo, "https://www.twilio.com/docs/errors/20404");
    });

    it("surfaces a duplicate unique name as RestException 50353 and a SID-shaped one as 50390", async () => {
      await client.conversations.v1.conversations.create({ uniqueName: "only-once" });
      const duplicate = await restError(
        client.conversations.v1.conversations.create({ uniqueName: "only-once" }),
      );
      assert.equal(duplicate.code, 50353);
      assert.equal(duplicate.status, 409);
      assert.equal(emulator.state.conversations().length, 1);

      const sidLike = await restError(
        client.conversations.v1.conversations.create({ uniqueName: `CH${"a".repeat(32)}` }),
      );
      assert.equal(sidLike.code, 50390);
    });

    it("serves the /v1/Services/{ChatServiceSid} twins for the default service only", async () => {
      const configuration = await client.conversations.v1.configuration().fetch();
      const serviceSid = configuration.defaultChatServiceSid;
      assert.equal(serviceSid, emulator.state.chatServiceSid());
      const created = await client.conversations.v1
        .services(serviceSid)
        .conversations.create({ uniqueName: "twin" });
      const fetched = await client.conversations.v1.conversations("twin").fetch();
      assert.equal(fetched.sid, created.sid);
      assert.match(created.url, new RegExp(`/v1/Services/${serviceSid}/Conversations/${created.sid}$`));

      const other = await restError(
        client.conversations.v1
          .services(`IS${"0".repeat(32)}`)
          .conversations(created.sid)
          .fetch(),
      );
      assert.equal(other.code, 20404);
    });
  });

  describe("participants and bindings", () => {
    const smsParticipant = {
      "messagingBinding.address": CUSTOMER,
      "messagingBinding.proxyAddress": PROXY_NUMBER,
    };

    it("rejects an address/proxy pair held by another open conversation (50416) and finds the holder", async () => {
      const first = await client.conversations.v1.conversations.create({ uniqueName: "first" });
      await client.conversations.v1.conversations(first.sid).participants.create(smsParticipant);
      const second = await client.conversations.v1.conversations.create({ uniqueName: "second" });

      const error = await restError(
        client.conversations.v1.conversations(second.sid).participants.create(smsParticipant),
      );
      assert.equal(error.code, 50416);
      assert.equal(error.status, 409);
      assert.equal(
        error.message,
        `A binding for this participant and proxy address already exists in Conversation ${first.sid}`,
      );
      assert.equal(/Conversation\s+(CH[0-9a-fA-F]{32})/.exec(error.message)?.[1], first.sid);

      const holders = await client.conversations.v1.participantConversations.list({ address: CUSTOMER });
      assert.deepEqual(
        holders.map((h) => [
          h.conversationSid,
          h.conversationState,
          h.participantMessagingBinding?.proxy_address,
        ]),
        [[first.sid, "active", PROXY_NUMBER]],
      );
      assert.equal(emulator.state.participants(second.sid).length, 0);
    });

    it("releases the binding when the holding conversation closes", async () => {
      const first = await client.conversations.v1.conversations.create({ uniqueName: "first" });
      await client.conversations.v1.conversations(first.sid).participants.create(smsParticipant);
      const second = await client.conversations.v1.conversations.create({ uniqueName: "second" });
      await restError(client.conversations.v1.conversations(second.sid).participants.create(smsParticipant));

      await client.conversations.v1.conversations(first.sid).update({ state: "closed" });
      const moved = await client.conversations.v1
        .conversations(second.sid)
        .participants.create(smsParticipant);
      assert.deepEqual(moved.messagingBinding, {
        type: "sms",
        address: CUSTOMER,
        proxy_address: PROXY_NUMBER,
      });

      const holders = await client.conversations.v1.participantConversations.list({ address: CUSTOMER });
      assert.deepEqual(
        holders.map((h) => [h.conversationSid, h.conversationState]).sort(),
        [
          [first.sid, "closed"],
          [second.sid, "active"],
        ].sort(),
      );
    });

    it("rejects a duplicate identity (50433) and the same pair twice in one conversation (50437)", async () => {
      const conversation = await client.conversations.v1.conversations.create({ uniqueName: "dupes" });
      const participants = client.conversations.v1.conversations(conversation.sid).participants;
      const agent = await participants.create({ identity: "agent-7" });
      assert.equal((await restError(participants.create({ identity: "agent-7" }))).code, 50433);

      await participants.create(smsParticipant);
      assert.equal((await restError(participants.create(smsParticipant))).code, 50437);
      assert.equal(emulator.state.participants(conversation.sid).length, 2);

      const byIdentity = await participants("agent-7").fetch();
      assert.equal(byIdentity.sid, agent.sid);
      const chatHolders = await client.conversations.v1.participantConversations.list({
        identity: "agent-7",
      });
      assert.equal(chatHolders[0]?.participantUserSid?.slice(0, 2), "US");
    });

    it("lists, fetches and deletes participants; deleting frees the pair", async () => {
      const first = await client.conversations.v1.conversations.create({ uniqueName: "first" });
      const participant = await client.conversations.v1
        .conversations(first.sid)
        .participants.create(smsParticipant);
      const listed = await client.conversations.v1.conversations(first.sid).participants.list();
      assert.deepEqual(
        listed.map((p) => p.sid),
        [participant.sid],
      );
      await client.conversations.v1.conversations(first.sid).participants(participant.sid).remove();
      const second = await client.conversations.v1.conversations.create({ uniqueName: "second" });
      await client.conversations.v1.conversations(second.sid).participants.create(smsParticipant);
      assert.equal(emulator.state.participants(second.sid)[0]?.address, CUSTOMER);
    });
  });

  describe("conversation messages", () => {
    it("gives messages increasing indexes and lists them in either order, across pages", async () => {
      const conversation = await client.conversations.v1.conversations.create({ uniqueName: "chat" });
      const messages = client.conversations.v1.conversations(conversation.sid).messages;
      const first = await messages.create({ body: "one" });
      assert.equal(first.author, "system", "Author defaults to system");
      await messages.create({
        body: "two",
        author: "agent-7",
        attributes: JSON.stringify({ mirrored: true }),
      });
      await messages.create({ body: "three" });

      const ascending = await messages.list({ pageSize: 2 });
      assert.deepEqual(
        ascending.map((m) => [m.index, m.body]),
        [
          [0, "one"],
          [1, "two"],
          [2, "three"],
        ],
      );
      const descending = await messages.list({ order: "desc" });
      assert.deepEqual(
        descending.map((m) => m.index),
        [2, 1, 0],
      );
      const fetched = await messages(first.sid).fetch();
      assert.equal(fetched.body, "one");

      await messages(first.sid).remove();
      const next = await messages.create({ body: "four" });
      assert.equal(next.index, 3, "indexes are never reused");
    });

    it("reactivates an inactive conversation when a message arrives", async () => {
      const conversation = await client.conversations.v1.conversations.create({ state: "inactive" });
      await client.conversations.v1.conversations(conversation.sid).messages.create({ body: "hello again" });
      assert.equal(emulator.state.conversation(conversation.sid)?.state, "active");
    });
  });

  describe("programmable messaging and numbers", () => {
    it("sends SMS and WhatsApp template messages through Messages.json", async () => {
      const sms = await client.messages.create({
        to: CUSTOMER,
        from: PROXY_NUMBER,
        body: "Your code is 1234",
        statusCallback: "https://hooks.example.com/status",
      });
      assert.match(sms.sid, /^SM[0-9a-f]{32}$/);
      assert.equal(sms.status, "queued");
      assert.equal(sms.direction, "outbound-api");

      const template = await client.messages.create({
        to: `whatsapp:${CUSTOMER}`,
        messagingServiceSid: emulator.state.messagingServiceSid(),
        contentSid: `HX${"3".repeat(32)}`,
        contentVariables: JSON.stringify({ 1: "Ada" }),
      });
      assert.equal(template.status, "accepted");

      assert.deepEqual(
        emulator.state.outboundMessages().map((m) => [m.to, m.body, m.contentSid, m.statusCallback]),
        [
          [CUSTOMER, "Your code is 1234", null, "https://hooks.example.com/status"],
          [`whatsapp:${CUSTOMER}`, null, `HX${"3".repeat(32)}`, null],
        ],
      );
      const fetched = await client.messages(sms.sid).fetch();
      assert.equal(fetched.body, "Your code is 1234");
      const listed = await client.messages.list({ to: CUSTOMER });
      assert.deepEqual(
        listed.map((m) => m.sid),
        [sms.sid],
      );
    });

    it("rejects an invalid To (21211) and a recipient who replied STOP (21610)", async () => {
      const invalid = await restError(client.messages.create({ to: "12345", from: PROXY_NUMBER, body: "x" }));
      assert.equal(invalid.code, 21211);
      emulator.optOut(CUSTOMER);
      const optedOut = await restError(
        client.messages.create({ to: CUSTOMER, from: PROXY_NUMBER, body: "x" }),
      );
      assert.equal(optedOut.code, 21610);
      assert.equal(emulator.state.outboundMessages().length, 0);
      emulator.optIn(CUSTOMER);
      const resumed = await client.messages.create({
        to: CUSTOMER,
        from: PROXY_NUMBER,
        body: "welcome back",
      });
      assert.equal(resumed.status, "queued");
      assert.equal(emulator.state.outboundMessages().length, 1);
    });

    it("lists and configures incoming phone numbers", async () => {
      const [number] = await client.incomingPhoneNumbers.list({ phoneNumber: PROXY_NUMBER });
      assert.ok(number !== undefined);
      const updated = await client.incomingPhoneNumbers(number.sid).update({
        smsUrl: "https://hooks.example.com/sms",
        smsMethod: "POST",
        statusCallback: "https://hooks.example.com/status",
      });
      assert.equal(updated.smsUrl, "https://hooks.example.com/sms");
      assert.equal(emulator.state.phoneNumbers()[0]?.smsUrl, "https://hooks.example.com/sms");
    });

    it("stores the account and service webhook configuration as set", async () => {
      await client.conversations.v1.configuration.webhooks().update({
        method: "POST",
        filters: ["onMessageAdded", "onConversationStateUpdated"],
        postWebhookUrl: "https://hooks.example.com/conversations",
        target: "webhook",
      });
      const account = await client.conversations.v1.configuration.webhooks().fetch();
      assert.deepEqual(account.filters, ["onMessageAdded", "onConversationStateUpdated"]);
      assert.equal(account.postWebhookUrl, "https://hooks.example.com/conversations");

      const serviceSid = emulator.state.chatServiceSid();
      await client.conversations.v1
        .services(serviceSid)
        .configuration.webhooks()
        .update({
          preWebhookUrl: "https://hooks.example.com/pre",
          filters: ["onMessageAdd"],
        });
      const service = await client.conversations.v1.services(serviceSid).configuration.webhooks().fetch();
      assert.equal(service.preWebhookUrl, "https://hooks.example.com/pre");
      assert.deepEqual(emulator.state.serviceWebhookConfiguration().filters, ["onMessageAdd"]);
    });
  });

  describe("OpenAPI honesty", () => {
    it("rejects a misspelt form parameter with 400 naming it, and creates nothing", async () => {
      const conversation = await client.conversations.v1.conversations.create({ uniqueName: "typo" });
      const response = await raw(emulator, "POST", `/v1/Conversations/${conversation.sid}/Participants`, {
        "MessagingBinding.Adress": CUSTOMER,
        "MessagingBinding.ProxyAddress": PROXY_NUMBER,
      });
      assert.equal(response.status, 400);
      assert.equal(response.body.code, 20001);
      assert.match(response.body.message ?? "", /'MessagingBinding\.Adress'/);
      assert.equal(emulator.state.participants(conversation.sid).length, 0);
    });

    it("rejects unknown query parameters too", async () => {
      const response = await raw(emulator, "GET", "/v1/Conversations?Sate=active");
      assert.equal(response.status, 400);
      assert.match(response.body.message ?? "", /'Sate'/);
    });

    it("rejects an invalid enum value, through the SDK and in a query", async () => {
      const conversation = await client.conversations.v1.conversations.create({ uniqueName: "enum" });
      const error = await restError(
        // @ts-expect-error — the SDK's type forbids it; the emulator must too.
        client.conversations.v1.conversations(conversation.sid).update({ state: "bogus" }),
      );
      assert.equal(error.status, 400);
      assert.match(error.message, /'State'.*initializing, inactive, active, closed.*"bogus"/);
      assert.equal(emulator.state.conversation(conversation.sid)?.state, "active");

      const listed = await raw(emulator, "GET", "/v1/Conversations?State=bogus");
      assert.equal(listed.status, 400);
      const pageSize = await raw(emulator, "GET", "/v1/Conversations?PageSize=101");
      assert.equal(pageSize.status, 400, "PageSize max is 100");
    });

    it("answers unknown paths with 20404 and wrong methods with 405", async () => {
      const unknown = await raw(emulator, "GET", "/v1/Conversationz");
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, 20404);
      const wrongMethod = await raw(emulator, "PUT", "/v1/Conversations");
      assert.equal(wrongMethod.status, 405);
      assert.equal(wrongMethod.body.code, 20004);
    });

    it("compiles a request and response validator for every operation of both specs", () => {
      const openApi = loadTwilioOpenApi();
      const operations = openApi.operations();
      assert.ok(operations.length > 250, `expected the whole spec, got ${operations.length} operations`);
      for (const operation of operations) {
        const check = openApi.validateRequest(operation, {
          pathParams: {},
          query: new Map(),
          body: new Map(),
          header: () => undefined,
        });
        assert.equal(typeof check.ok, "boolean");
        for (const status of operation.responses.keys()) openApi.validateResponse(operation, status, {});
      }
    });
  });

  describe("authentication", () => {
    it("answers bad credentials with 401 / 20003", async () => {
      const error = await restError(
        clientFor(emulator, { token: "wrong" }).conversations.v1.conversations.list(),
      );
      assert.equal(error.status, 401);
      assert.equal(error.code, 20003);
    });

    it("accepts an API key with the account SID as option", async () => {
      const keyed = twilio(API_KEY_SID, API_KEY_SECRET, { accountSid: ACCOUNT_SID });
      routeTwilioClientTo(keyed, emulator.url);
      const sms = await keyed.messages.create({ to: CUSTOMER, from: PROXY_NUMBER, body: "via key" });
      assert.equal(sms.accountSid, ACCOUNT_SID);
      const wrongKey = twilio(API_KEY_SID, "not-the-secret", { accountSid: ACCOUNT_SID });
      routeTwilioClientTo(wrongKey, emulator.url);
      assert.equal((await restError(wrongKey.messages.list())).code, 20003);
    });
  });

  describe("fault injection", () => {
    it("fails the next requests with 20429, after which the SDK call succeeds", async () => {
      emulator.faults.inject({
        status: 429,
        count: 2,
        match: { method: "POST", pathPrefix: "/v1/Conversations" },
      });
      const first = await restError(client.conversations.v1.conversations.create({ uniqueName: "retry-me" }));
      assert.equal(first.status, 429);
      assert.equal(first.code, 20429);
      assert.equal(first.message, "Too many requests");

      const retrying = clientFor(emulator, { autoRetry: true });
      const created = await retrying.conversations.v1.conversations.create({ uniqueName: "retry-me" });
      assert.equal(created.uniqueName, "retry-me");
      assert.deepEqual(
        log.filter((entry) => entry.path === "/v1/Conversations").map((entry) => entry.status),
        [429, 429, 201],
      );
      assert.deepEqual(emulator.faults.pending(), { failures: 0, delays: 0 });
      assert.equal(emulator.state.conversations().length, 1, "a 429 is never processed");
    });

    it("matches only the configured method and path, and answers 5xx as asked", async () => {
      emulator.faults.inject({ status: 503, count: 1, match: { pathPrefix: "/2010-04-01" } });
      await client.conversations.v1.conversations.list();
      const error = await restError(client.messages.list());
      assert.equal(error.status, 503);
      assert.equal(error.code, 20503);
    });

    it("delays responses but has already applied the request", async () => {
      emulator.faults.delay({ ms: 200, count: 1, match: { method: "POST" } });
      const started = performance.now();
      let answered = false;
      const pending = client.conversations.v1.conversations.create({ uniqueName: "slow" }).finally(() => {
        answered = true;
      });
      while (emulator.state.conversations().length === 0) await sleep(5);
      assert.equal(answered, false, "the conversation exists before the client hears back");
      await pending;
      assert.ok(performance.now() - started >= 190, "the response was held back");
    });
  });
});

describe("twilio emulator response validation", () => {
  it("turns a response that breaks the spec into a 500 and makes stop() fail", async () => {
    const emulator = await startTwilioEmulator({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      tamperResponse: (operationId, _status, body) =>
        operationId === "CreateConversation" ? { ...body, state: "weird", sid: 12 } : body,
    });
    const client = clientFor(emulator);
    const originalError = console.error;
    const logged: unknown[] = [];
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      const error = await restError(client.conversations.v1.conversations.create({ uniqueName: "broken" }));
      assert.equal(error.status, 500);
      assert.equal(error.code, 20500);
      assert.match(error.message, /Twilio emulator bug: CreateConversation 201 violates the OpenAPI spec/);
      assert.match(error.message, /\/state must be equal to one of the allowed values/);
      assert.match(error.message, /\/sid must be string/);
      assert.equal(logged.length, 1, "the violation is logged loudly");

      const healthy = await client.conversations.v1.conversations.list();
      assert.equal(healthy.length, 1, "other operations are untouched");
    } finally {
      console.error = originalError;
      await assert.rejects(emulator.stop(), {
        name: "TwilioEmulatorBugError",
        message: /CreateConversation|state/,
      });
    }
  });

  it("lets a test acknowledge violations it provoked", async () => {
    const emulator = await startTwilioEmulator({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      tamperResponse: (_operationId, status, body) =>
        status === 200 ? { ...body, extra_field: true } : body,
    });
    const originalError = console.error;
    console.error = () => undefined;
    try {
      const error = await restError(clientFor(emulator).conversations.v1.conversations.list());
      assert.equal(error.status, 500);
      const [violation, ...rest] = emulator.takeSpecViolations();
      assert.equal(rest.length, 0);
      assert.equal(violation?.operationId, "ListConversation");
      assert.match(violation?.problems.join() ?? "", /must NOT have additional properties 'extra_field'/);
    } finally {
      console.error = originalError;
      await emulator.stop();
    }
  });
});
