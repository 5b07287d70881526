// Cold-start configuration: valid env parses, every invalid value fails with a message naming it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../../lib/config/errors.ts";
import { parseTenantDirectory } from "../../lib/config/tenant-config.ts";
import { parseTwilioRestConfig } from "../../lib/config/twilio-config.ts";
import { DefaultDedupeTtlSeconds, parseWebhookConfig } from "../../lib/config/webhook-config.ts";
import { tenantFor } from "../../lib/domain/tenants.ts";

const sid = `AC${"1".repeat(32)}`;
const webhookEnv = {
  PUBLIC_WEBHOOK_BASE_URL: "https://hooks.example.com/",
  DEDUPE_TABLE_NAME: "dedupe",
  CONSENT_QUEUE_URL: "https://sqs/consent.fifo",
  MIRROR_QUEUE_URL: "https://sqs/mirror.fifo",
  TWILIO_AUTH_TOKEN: "primary",
};

const rejects = (fn: () => unknown, name: RegExp) =>
  assert.throws(fn, (error: unknown) => error instanceof ConfigError && name.test(error.message));

describe("webhook config", () => {
  test("defaults and normalisation", () => {
    const config = parseWebhookConfig(webhookEnv);
    assert.equal(config.publicBaseUrl, "https://hooks.example.com");
    assert.equal(config.dedupeTtlSeconds, DefaultDedupeTtlSeconds);
    assert.deepEqual(config.tokens, {
      kind: "env",
      primary: "primary",
      secondary: undefined,
      subaccounts: {},
    });
  });

  test("the secret ARN wins over env tokens", () => {
    const config = parseWebhookConfig({ ...webhookEnv, TWILIO_SECRET_ARN: "arn:aws:secretsmanager:x" });
    assert.deepEqual(config.tokens, { kind: "secret", secretArn: "arn:aws:secretsmanager:x" });
  });

  test("subaccount tokens are validated", () => {
    const ok = parseWebhookConfig({
      ...webhookEnv,
      TWILIO_SUBACCOUNT_AUTH_TOKENS: JSON.stringify({ [sid]: "t" }),
    });
    assert.equal(ok.tokens.kind === "env" && ok.tokens.subaccounts[sid], "t");
    rejects(
      () => parseWebhookConfig({ ...webhookEnv, TWILIO_SUBACCOUNT_AUTH_TOKENS: '{"nope":"t"}' }),
      /TWILIO_SUBACCOUNT_AUTH_TOKENS/,
    );
    rejects(() => parseWebhookConfig({ ...webhookEnv, TWILIO_SUBACCOUNT_AUTH_TOKENS: "{" }), /valid JSON/);
  });

  for (const [name, value, message] of [
    ["PUBLIC_WEBHOOK_BASE_URL", "", /PUBLIC_WEBHOOK_BASE_URL is required/],
    ["PUBLIC_WEBHOOK_BASE_URL", "not a url", /absolute URL/],
    ["PUBLIC_WEBHOOK_BASE_URL", "https://x.test/?a=1", /query or fragment/],
    ["DEDUPE_TABLE_NAME", "", /DEDUPE_TABLE_NAME/],
    ["CONSENT_QUEUE_URL", "", /CONSENT_QUEUE_URL/],
    ["DEDUPE_TTL_SECONDS", "7d", /whole number/],
    ["DEDUPE_TTL_SECONDS", "5", /at least 60/],
    ["MAX_BODY_BYTES", "-1", /whole number/],
    ["TWILIO_AUTH_TOKEN", "", /TWILIO_SECRET_ARN.*TWILIO_AUTH_TOKEN/],
  ] as const) {
    test(`${name}=${JSON.stringify(value)} is rejected`, () =>
      rejects(() => parseWebhookConfig({ ...webhookEnv, [name]: value }), message));
  }
});

describe("Twilio REST config", () => {
  test("API key preferred over auth token; base URL trimmed", () => {
    const config = parseTwilioRestConfig({
      TWILIO_ACCOUNT_SID: sid,
      TWILIO_API_KEY_SID: "SKx",
      TWILIO_API_KEY_SECRET: "s",
      TWILIO_AUTH_TOKEN: "t",
      TWILIO_API_BASE_URL: "http://127.0.0.1:1/",
    });
    assert.equal(config.apiBaseUrl, "http://127.0.0.1:1");
    assert.deepEqual(config.credentials, { kind: "env", accountSid: sid, username: "SKx", password: "s" });
  });

  test("auth token fallback, secret ARN, and the failures", () => {
    assert.equal(
      parseTwilioRestConfig({ TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: "t" }).credentials.kind,
      "env",
    );
    assert.equal(parseTwilioRestConfig({ TWILIO_SECRET_ARN: "arn" }).credentials.kind, "secret");
    rejects(() => parseTwilioRestConfig({}), /TWILIO_ACCOUNT_SID/);
    rejects(() => parseTwilioRestConfig({ TWILIO_ACCOUNT_SID: "AC1" }), /TWILIO_ACCOUNT_SID/);
    rejects(() => parseTwilioRestConfig({ TWILIO_ACCOUNT_SID: sid }), /TWILIO_API_KEY_SID/);
  });
});

describe("tenant directory", () => {
  test("absent config is one default tenant", () => {
    const directory = parseTenantDirectory({});
    assert.equal(tenantFor(directory, { to: "+15005550006" }), "default");
  });

  test("the Messaging Service wins over the number; unknown senders get the default", () => {
    const directory = parseTenantDirectory({
      TENANT_CONFIG: JSON.stringify({
        defaultTenant: "main",
        senders: { "+15005550006": "acme", MG1: "globex" },
        tenants: { acme: {}, globex: {} },
      }),
    });
    assert.equal(tenantFor(directory, { to: "+15005550006" }), "acme");
    assert.equal(tenantFor(directory, { to: "+15005550006", messagingServiceSid: "MG1" }), "globex");
    assert.equal(tenantFor(directory, { to: "+19999999999" }), "main");
  });

  test("invalid tenant ids and shapes are rejected", () => {
    rejects(() => parseTenantDirectory({ TENANT_CONFIG: "[]" }), /JSON object/);
    rejects(() => parseTenantDirectory({ TENANT_CONFIG: '{"defaultTenant":"a b"}' }), /defaultTenant/);
    rejects(() => parseTenantDirectory({ TENANT_CONFIG: '{"senders":{"+1":"x/y"}}' }), /senders/);
    rejects(() => parseTenantDirectory({ TENANT_CONFIG: '{"tenants":{"ok":"no"}}' }), /tenants/);
  });
});
