// The README's newcomer walkthrough ("Running it locally"), run for real: the built webhook, compliance and mirror bundles
// on the local stack with the Twilio emulator, driven by `npm run simulate` (the CLI, as a child process
// reading the stack file) and observed through the emulator's Twilio REST API only. If this fails, the
// walkthrough is no longer true.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type LocalStack, startLocalStack } from "../../lib/local/stack.ts";
import { distDir } from "../../lib/tools/build.ts";

const run = promisify(execFile);

let stack: LocalStack;
let workDir: string;
let stackFile: string;

before(async () => {
  for (const name of ["webhook", "compliance", "mirror"] as const) {
    assert.ok(
      existsSync(join(distDir(name), "index.mjs")),
      `${distDir(name)}/index.mjs is missing: run npm run build`,
    );
  }
  workDir = await mkdtemp(join(tmpdir(), "local-stack-walkthrough-"));
  stackFile = join(workDir, "stack.json");
  stack = await startLocalStack({
    port: 0,
    twilio: { mode: "emulator", port: 0 },
    schedules: false,
    queueDepthIntervalMs: 0,
    stackFile,
  });
});

after(async () => {
  await stack?.stop();
  assert.equal(existsSync(stackFile), false, "stop() removes the stack file");
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const simulate = async (...args: string[]): Promise<{ code: number; stdout: string }> => {
  try {
    const { stdout } = await run(process.execPath, [
      "lib/local/simulate.ts",
      ...args,
      "--stack-file",
      stackFile,
    ]);
    return { code: 0, stdout };
  } catch (error) {
    const failed: { code?: unknown; stdout?: unknown } =
      typeof error === "object" && error !== null ? error : {};
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: String(failed.stdout ?? "") };
  }
};

/** GET on the emulator with the stack's credentials, as `curl -u AC…:token` in the README. */
const twilioGet = async (path: string): Promise<Record<string, unknown>> => {
  const { accountSid, authToken, apiBaseUrl } = stack.stackInfo.twilio;
  const response = await fetch(`${apiBaseUrl}${path}`, {
    headers: { authorization: `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString("base64")}` },
  });
  assert.equal(response.status, 200, path);
  const body: unknown = await response.json();
  assert.ok(typeof body === "object" && body !== null && !Array.isArray(body), `${path} answers an object`);
  return { ...body };
};

type Conversation = { sid: string; unique_name: string | null };
type Message = { author: string; body: string | null };

const list = async <T>(path: string, key: string): Promise<T[]> => {
  const page = await twilioGet(path);
  const items = page[key];
  assert.ok(Array.isArray(items), `${path} lists ${key}`);
  return items;
};

const eventually = async <T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

describe("the README walkthrough", () => {
  const customer = "+14155550123";

  test("the stack file carries the contract simulate and the README rely on", async () => {
    const info = JSON.parse(await readFile(stackFile, "utf8"));
    assert.equal(info.api, stack.apiUrl);
    assert.equal(info.publicWebhookBaseUrl, stack.apiUrl);
    assert.equal(info.twilio.apiBaseUrl, stack.twilioEmulator?.url);
    assert.match(info.twilio.accountSid, /^AC[0-9a-f]{32}$/);
    assert.equal(typeof info.twilio.authToken, "string");
    assert.match(info.aws.dynamodbEndpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.functions.webhook.env.TWILIO_API_BASE_URL, info.twilio.apiBaseUrl);
    assert.equal(info.functions.webhook.env.PUBLIC_WEBHOOK_BASE_URL, info.publicWebhookBaseUrl);
    assert.equal(info.functions.webhook.env.TWILIO_SECRET_ARN, undefined);
    assert.match(info.functions.compliance.env.CONSENT_TABLE_NAME, /consent/);
  });

  test("a customer texts and the thread appears in the emulator with their message", async () => {
    const sent = await simulate("inbound-sms", "--from", customer, "--body", "Hi, where is my order?");
    assert.equal(sent.code, 0, sent.stdout);
    assert.match(sent.stdout, /→ 200 OK/);
    const thread = await eventually(async () => {
      const conversations = await list<Conversation>("/v1/Conversations", "conversations");
      return conversations.find((conversation) => conversation.unique_name?.includes(customer.slice(1)));
    }, "the customer's thread");
    const messages = await eventually(async () => {
      const found = await list<Message>(`/v1/Conversations/${thread.sid}/Messages`, "messages");
      return found.length > 0 ? found : undefined;
    }, "the mirrored message");
    assert.deepEqual(
      messages.map((message) => [message.author, message.body]),
      [[customer, "Hi, where is my order?"]],
    );
    assert.equal((await list(`/v1/Conversations/${thread.sid}/Participants`, "participants")).length, 1);
  });

  test("STOP removes them from the thread, tells the agents, and onParticipantAdd is then refused", async () => {
    const [thread] = await list<Conversation>("/v1/Conversations", "conversations");
    assert.ok(thread);
    const stop = await simulate("inbound-sms", "--from", customer, "--body", "STOP");
    assert.equal(stop.code, 0, stop.stdout);
    await eventually(async () => {
      const participants = await list(`/v1/Conversations/${thread.sid}/Participants`, "participants");
      return participants.length === 0 ? true : undefined;
    }, "the participant to be removed");
    const messages = await eventually(async () => {
      const found = await list<Message>(`/v1/Conversations/${thread.sid}/Messages`, "messages");
      return found.some((message) => message.author === "system") ? found : undefined;
    }, "the compliance notice");
    assert.ok(
      messages.every((message) => message.body !== "STOP"),
      "STOP itself is not mirrored",
    );

    const readd = await simulate("pre-participant-add", "--address", customer);
    assert.equal(readd.code, 1);
    assert.match(readd.stdout, /→ 403 Forbidden/);
    assert.match(readd.stdout, /opted out/);

    const { accountSid, authToken, apiBaseUrl, phoneNumbers } = stack.stackInfo.twilio;
    const send = await fetch(`${apiBaseUrl}/2010-04-01/Accounts/${accountSid}/Messages.json`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString("base64")}` },
      body: new URLSearchParams({ To: customer, From: phoneNumbers[0] ?? "", Body: "hello" }),
    });
    assert.equal(send.status, 400);
    const refusal: unknown = await send.json();
    assert.ok(typeof refusal === "object" && refusal !== null && "code" in refusal);
    assert.equal(refusal.code, 21610, "Twilio itself refuses to text an opted-out number");
  });

  test("simulate signs with the stack's token: a wrong signature is refused", async () => {
    const forged = await simulate("inbound-sms", "--from", customer, "--body", "hello", "--bad-signature");
    assert.equal(forged.code, 1);
    assert.match(forged.stdout, /→ 403 Forbidden/);
  });
});
