// Retry by failure class with backoff + full jitter; Twilio error classification by code.
import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, withRetry } from "../../lib/app/retry.ts";
import { maskAddress } from "../../lib/domain/privacy.ts";
import {
  classifyTwilioFailure,
  conflictingConversationSid,
  TwilioApiError,
} from "../../lib/domain/twilio-errors.ts";

const error = (status: number | undefined, code?: number, message = "x") =>
  new TwilioApiError(message, { status, code });

test("Twilio failures are classified by code", () => {
  assert.equal(classifyTwilioFailure(error(429, 20429)), "retryable");
  assert.equal(classifyTwilioFailure(error(503)), "retryable");
  assert.equal(classifyTwilioFailure(error(undefined)), "retryable", "network error");
  assert.equal(classifyTwilioFailure(error(401, 20003)), "configuration");
  assert.equal(classifyTwilioFailure(error(404, 20404)), "permanent");
  assert.equal(classifyTwilioFailure(error(409, 50416)), "permanent");
});

test("the conflicting conversation is read from a 50416 message", () => {
  const sid = `CH${"a1".repeat(16)}`;
  const conflict = error(
    409,
    50416,
    `A binding for this participant and proxy address already exists in Conversation ${sid}`,
  );
  assert.equal(conflictingConversationSid(conflict), sid);
  assert.equal(conflictingConversationSid(error(409, 50416, "no sid")), undefined);
});

test("retries only retryable failures, with capped full-jitter delays", async () => {
  const delays: number[] = [];
  let calls = 0;
  const result = await withRetry(
    async () => {
      calls += 1;
      if (calls < 4) throw error(429, 20429);
      return "done";
    },
    {
      attempts: 5,
      baseDelayMs: 100,
      maxDelayMs: 250,
      isRetryable: (e) => classifyTwilioFailure(e) === "retryable",
      sleep: async (ms) => {
        delays.push(ms);
      },
      random: () => 0.999,
    },
  );
  assert.equal(result, "done");
  assert.deepEqual(delays, [99, 199, 249]);
  await assert.rejects(
    withRetry(async () => Promise.reject(error(401, 20003)), {
      attempts: 5,
      baseDelayMs: 1,
      maxDelayMs: 1,
      isRetryable: (e) => classifyTwilioFailure(e) === "retryable",
      sleep: async () => assert.fail("configuration errors are not retried"),
    }),
    /x/,
  );
});

test("retries stop when the remaining time cannot cover the next delay", async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(
      async () => {
        calls += 1;
        throw error(503);
      },
      {
        attempts: 10,
        baseDelayMs: 5000,
        maxDelayMs: 5000,
        isRetryable: () => true,
        random: () => 1,
        remainingMs: () => 3000,
        sleep: async () => undefined,
      },
    ),
  );
  assert.equal(calls, 1);
  assert.equal(
    backoffDelay(10, {
      attempts: 1,
      baseDelayMs: 100,
      maxDelayMs: 3000,
      isRetryable: () => true,
      random: () => 0.5,
    }),
    1500,
  );
});

test("addresses are masked for logs", () => {
  assert.equal(maskAddress("+14155550123"), "+1415•••••23");
  assert.equal(maskAddress("whatsapp:+447700900123"), "whatsapp:+4477••••••23");
  assert.equal(maskAddress("agent.jane"), "ag••••");
  assert.equal(maskAddress(undefined), undefined);
});
