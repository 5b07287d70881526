// Token sources: env tokens, the Secrets Manager secret parsing, caching and rotation refresh.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  cachedTwilioSecret,
  parseTwilioSecret,
  secretAuthTokens,
  staticAuthTokens,
} from "../../lib/adapters/auth-tokens.ts";
import { ConfigError } from "../../lib/config/errors.ts";

const sub = `AC${"2".repeat(32)}`;

describe("auth tokens", () => {
  test("a subaccount's own token is tried first, then primary and secondary", async () => {
    const source = staticAuthTokens({ primary: "p", secondary: "s", subaccounts: { [sub]: "own" } });
    assert.deepEqual(await source.tokensFor(sub), ["own", "p", "s"]);
    assert.deepEqual(await source.tokensFor(undefined), ["p", "s"]);
  });

  test("secret JSON is parsed; malformed secrets fail with a clear error", () => {
    const secret = parseTwilioSecret(
      JSON.stringify({
        accountSid: "AC1",
        authToken: "p",
        apiKeySid: "SK1",
        apiKeySecret: "k",
        subaccountAuthTokens: { [sub]: "own" },
      }),
    );
    assert.equal(secret.primary, "p");
    assert.equal(secret.subaccounts?.[sub], "own");
    for (const [text, message] of [
      ["not json", /not valid JSON/],
      ["[]", /JSON object/],
      ["{}", /no authToken/],
      ['{"authToken":5}', /must be a string/],
      ['{"authToken":"p","subaccountAuthTokens":{"AC":1}}', /must be a string/],
    ] as const) {
      assert.throws(
        () => parseTwilioSecret(text),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    }
  });

  test("the secret is read once, shared by concurrent callers, and re-read after maxAge", async () => {
    let now = 0;
    let reads = 0;
    const secret = cachedTwilioSecret({
      read: async () => {
        reads += 1;
        return JSON.stringify({ authToken: `t${reads}` });
      },
      now: () => now,
      maxAgeMs: 1000,
      minRefreshIntervalMs: 100,
    });
    const tokens = secretAuthTokens(secret);
    const [a, b] = await Promise.all([tokens.tokensFor(undefined), tokens.tokensFor(undefined)]);
    assert.deepEqual([a, b, reads], [["t1"], ["t1"], 1]);
    now = 500;
    assert.deepEqual(await tokens.tokensFor(undefined), ["t1"]);
    now = 1501;
    assert.deepEqual(await tokens.tokensFor(undefined), ["t2"]);
  });

  test("refresh after a failed verification is rate limited and reports whether anything changed", async () => {
    let now = 0;
    let value = "a";
    const secret = cachedTwilioSecret({
      read: async () => JSON.stringify({ authToken: value }),
      now: () => now,
      maxAgeMs: 60_000,
      minRefreshIntervalMs: 30_000,
    });
    await secret.get();
    value = "b";
    now = 10_000;
    assert.equal(await secret.refresh(), false, "too soon: no read");
    now = 31_000;
    assert.equal(await secret.refresh(), true);
    assert.equal((await secret.get()).primary, "b");
    now = 62_000;
    assert.equal(await secret.refresh(), false, "unchanged secret");
  });

  test("a failing secret read surfaces, and the next call retries", async () => {
    let fail = true;
    const secret = cachedTwilioSecret({
      read: async () => {
        if (fail) throw new Error("AccessDenied");
        return JSON.stringify({ authToken: "ok" });
      },
      now: () => 0,
      maxAgeMs: 1000,
      minRefreshIntervalMs: 0,
    });
    await assert.rejects(secret.get(), /AccessDenied/);
    fail = false;
    assert.equal((await secret.get()).primary, "ok");
  });
});
