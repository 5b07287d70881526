// `npm run twilio:configure` against the local Twilio emulator through the real twilio SDK: it sets the
// Conversations webhooks (global or one service) and the phone numbers' inbound URL (the Messaging-Service
// path has no emulator counterpart; test/unit/twilio-configure.test.ts covers it), is idempotent
// (a second run changes and requests no update), honours --dry-run, and reads URLs from cdk outputs.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { webhookUrlOutputKey } from "../../infra/stack-outputs.ts";
import { EnvNames } from "../../lib/config/env.ts";
import {
  type RequestLogEntry,
  startTwilioEmulator,
  type TwilioEmulator,
} from "../../lib/local/twilio-emulator/server.ts";
import {
  type ConfigurePlan,
  ConversationsFilters,
  clientFromEnv,
  configureTwilio,
  main,
  parseCommandLine,
} from "../../lib/tools/twilio-configure.ts";

const ACCOUNT_SID = `AC${"3".repeat(32)}`;
const AUTH_TOKEN = "configure-test-token";
const API_KEY_SID = `SK${"4".repeat(32)}`;
const API_KEY_SECRET = "configure-test-key-secret";
const NUMBER = "+15550000009";
const OTHER_NUMBER = "+15550000010";
const BASE = "https://abc123.execute-api.eu-west-1.amazonaws.com";
const CONVERSATIONS_URL = `${BASE}/twilio/conversations`;
const INBOUND_URL = `${BASE}/twilio/messaging/inbound`;

let emulator: TwilioEmulator;
let requests: RequestLogEntry[] = [];
let workDir: string;

const env = (overrides: Record<string, string> = {}) => ({
  [EnvNames.twilioAccountSid]: ACCOUNT_SID,
  [EnvNames.twilioAuthToken]: AUTH_TOKEN,
  [EnvNames.twilioApiBaseUrl]: emulator.url,
  ...overrides,
});
const client = () => clientFromEnv(env());
const plan = (overrides: Partial<ConfigurePlan> = {}): ConfigurePlan => ({
  conversationsUrl: CONVERSATIONS_URL,
  messagingInboundUrl: INBOUND_URL,
  phoneNumbers: [NUMBER],
  dryRun: false,
  ...overrides,
});
const writes = () => requests.filter((entry) => entry.method === "POST");
const number = (phoneNumber: string) =>
  emulator.state.phoneNumbers().find((n) => n.phoneNumber === phoneNumber);

before(async () => {
  emulator = await startTwilioEmulator({
    port: 0,
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    apiKeys: { [API_KEY_SID]: API_KEY_SECRET },
    phoneNumbers: [NUMBER, OTHER_NUMBER],
    onRequest: (entry) => requests.push(entry),
  });
  workDir = await mkdtemp(join(tmpdir(), "twilio-configure-"));
});

after(async () => {
  await emulator.stop();
  await rm(workDir, { recursive: true, force: true });
});

beforeEach(() => {
  emulator.reset();
  requests = [];
});

describe("configureTwilio", () => {
  test("points the global Conversations webhooks at the backbone with POST and every required filter", async () => {
    await configureTwilio(client(), plan({ phoneNumbers: [] }));
    const config = emulator.state.webhookConfiguration();
    assert.equal(config.preWebhookUrl, CONVERSATIONS_URL);
    assert.equal(config.postWebhookUrl, CONVERSATIONS_URL);
    assert.equal(config.method, "POST");
    assert.deepEqual([...config.filters].sort(), [...ConversationsFilters].sort());
  });

  test("sets the inbound SmsUrl and POST on the chosen number only", async () => {
    await configureTwilio(client(), plan());
    assert.equal(number(NUMBER)?.smsUrl, INBOUND_URL);
    assert.equal(number(NUMBER)?.smsMethod, "POST");
    assert.notEqual(number(OTHER_NUMBER)?.smsUrl, INBOUND_URL);
  });

  test("reports the differing fields on the first run", async () => {
    const [conversations, phone] = await configureTwilio(client(), plan());
    const fields = conversations?.changes.map((change) => change.field) ?? [];
    for (const field of ["PreWebhookUrl", "PostWebhookUrl", "Filters"])
      assert.ok(fields.includes(field), field);
    assert.deepEqual(phone?.changes.find((change) => change.field === "SmsUrl")?.to, `"${INBOUND_URL}"`);
  });

  test("a second run changes nothing and sends no update", async () => {
    await configureTwilio(client(), plan());
    requests = [];
    const results = await configureTwilio(client(), plan());
    assert.deepEqual(
      results.map((result) => result.changes),
      [[], []],
    );
    assert.deepEqual(writes(), []);
  });

  test("only the fields that drifted are reported after someone edits one", async () => {
    await configureTwilio(client(), plan());
    await client().conversations.v1.configuration.webhooks().update({ method: "GET" });
    const [conversations] = await configureTwilio(client(), plan({ phoneNumbers: [] }));
    assert.deepEqual(conversations?.changes, [{ field: "Method", from: '"GET"', to: '"POST"' }]);
    assert.equal(emulator.state.webhookConfiguration().method, "POST");
  });

  test("--dry-run reports the changes but sends no update", async () => {
    const results = await configureTwilio(client(), plan({ dryRun: true }));
    assert.ok(results.every((result) => result.changes.length > 0));
    assert.deepEqual(writes(), []);
    assert.notEqual(emulator.state.webhookConfiguration().preWebhookUrl, CONVERSATIONS_URL);
  });

  test("configures one Conversation Service instead of the account when given its SID", async () => {
    const serviceSid = emulator.state.chatServiceSid();
    const global = emulator.state.webhookConfiguration();
    await configureTwilio(client(), plan({ serviceSid, phoneNumbers: [] }));
    assert.equal(emulator.state.serviceWebhookConfiguration().postWebhookUrl, CONVERSATIONS_URL);
    assert.deepEqual(emulator.state.webhookConfiguration(), global);
  });

  test("works with API key credentials", async () => {
    const keyClient = clientFromEnv(
      env({ [EnvNames.twilioApiKeySid]: API_KEY_SID, [EnvNames.twilioApiKeySecret]: API_KEY_SECRET }),
    );
    await configureTwilio(keyClient, plan());
    assert.equal(number(NUMBER)?.smsUrl, INBOUND_URL);
  });

  test("a Messaging Service that cannot be fetched leaves the Conversations webhooks and numbers untouched", async () => {
    const failing = {
      fetch: async () => Promise.reject(new Error("The requested resource was not found")),
      update: async () => assert.fail("must not update"),
    };
    const services = {
      messagingStatusUrl: `${BASE}/twilio/messaging/status`,
      messagingServiceSids: [`MG${"a".repeat(32)}`],
    };
    await assert.rejects(configureTwilio(client(), plan(services), failing), /messaging service MGa+/);
    assert.deepEqual(writes(), []);
  });

  test("rejects a number the account does not own before changing anything", async () => {
    await assert.rejects(
      configureTwilio(client(), plan({ phoneNumbers: [NUMBER, "+15559999999"] })),
      /\+15559999999/,
    );
    assert.deepEqual(writes(), []);
  });
});

describe("command line", () => {
  test("takes both URLs from a cdk outputs file", async () => {
    const file = join(workDir, "cdk-outputs.json");
    await writeFile(
      file,
      JSON.stringify({
        "TwilioBackbone-Stateful": { TwilioSecretArn: "arn:aws:secretsmanager:eu-west-1:1:secret:x" },
        "TwilioBackbone-Service": {
          [webhookUrlOutputKey("conversations")]: CONVERSATIONS_URL,
          [webhookUrlOutputKey("messaging-inbound")]: INBOUND_URL,
          [webhookUrlOutputKey("messaging-status")]: `${BASE}/twilio/messaging/status`,
        },
      }),
    );
    const { plan: parsed } = await parseCommandLine(["--outputs", file, "--phone-number", NUMBER]);
    assert.equal(parsed?.conversationsUrl, CONVERSATIONS_URL);
    assert.equal(parsed?.messagingInboundUrl, INBOUND_URL);
    assert.equal(parsed?.messagingStatusUrl, `${BASE}/twilio/messaging/status`);
    assert.deepEqual(parsed?.phoneNumbers, [NUMBER]);
  });

  test("prints each change, then 'unchanged' on a rerun", async () => {
    const args = ["--conversations-url", CONVERSATIONS_URL, "--messaging-inbound-url", INBOUND_URL];
    const first: string[] = [];
    assert.equal(await main([...args, "--phone-number", NUMBER], env(), (line) => first.push(line)), 0);
    assert.ok(first.includes("conversations webhooks (global): changed"), first.join("\n"));
    assert.ok(first.some((line) => line.startsWith(`  SmsUrl: `) && line.endsWith(`"${INBOUND_URL}"`)));
    const second: string[] = [];
    assert.equal(await main([...args, "--phone-number", NUMBER], env(), (line) => second.push(line)), 0);
    assert.deepEqual(second.slice(0, 2), [
      "conversations webhooks (global): unchanged",
      `phone number ${NUMBER} (${number(NUMBER)?.sid}): unchanged`,
    ]);
    assert.equal(second.length, 3);
    assert.match(second[2] ?? "", /StatusCallback of each send.*--messaging-service/);
  });

  test("--help prints usage and touches nothing", async () => {
    const lines: string[] = [];
    assert.equal(await main(["--help"], env(), (line) => lines.push(line)), 0);
    assert.match(lines.join("\n"), /--phone-number/);
    assert.deepEqual(requests, []);
  });

  test("fails with a message, not a stack trace, on a malformed number or missing credentials", async () => {
    const lines: string[] = [];
    const args = ["--conversations-url", CONVERSATIONS_URL, "--phone-number", "5551234"];
    assert.equal(await main(args, env(), (line) => lines.push(line)), 1);
    assert.match(lines.join("\n"), /E\.164/);
    const noCredentials: string[] = [];
    assert.equal(
      await main(
        ["--conversations-url", CONVERSATIONS_URL],
        { [EnvNames.twilioAccountSid]: ACCOUNT_SID },
        (line) => noCredentials.push(line),
      ),
      1,
    );
    assert.match(noCredentials.join("\n"), /TWILIO_AUTH_TOKEN/);
    assert.deepEqual(requests, []);
  });
});
