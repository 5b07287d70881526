// The local stack end to end, driven only over HTTP: signed webhooks go through the local API Gateway
// into the built webhook bundle, and a scripted consumer (test/e2e/fixtures/sqs-consumer.ts, bundled
// like a real function) stands in for compliance on the consent queue, so the SQS event source mapping's
// semantics — partial batch failures, FIFO groups, thrown errors, timeouts, redrive to the DLQ — can be
// checked record by record through the stack's invocation log.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyEventV2, SQSRecord } from "aws-lambda";
import type { InvocationRecord, LocalStack } from "../../lib/local/stack.ts";
import { startLocalStack } from "../../lib/local/stack.ts";
import { Queues } from "../../lib/resources.ts";
import { bundle, distDir } from "../../lib/tools/build.ts";
import { encodeForm, type FormInput, inboundSms, sign } from "../support/twilio-webhooks.ts";
import { sendRaw } from "./fixtures/http.ts";

const inboundPath = "/twilio/messaging/inbound";
const visibilityTimeoutSeconds = 1;

let stack: LocalStack;
let workDir: string;
let sqs: SQSClient;

before(async () => {
  assert.ok(
    existsSync(join(distDir("webhook"), "index.mjs")),
    "dist/functions/webhook/index.mjs is missing: run npm run build first",
  );
  workDir = await mkdtemp(join(tmpdir(), "local-stack-e2e-"));
  const consumerDir = join(workDir, "consumer");
  await bundle("test/e2e/fixtures/sqs-consumer.ts", consumerDir);
  stack = await startLocalStack({
    port: 0,
    twilio: { mode: "emulator", port: 0 },
    functions: {
      // One environment, so a batch that timed out can only be retried by a freshly started one.
      // No batching window (as deployed): batches form from a backlog, see `backlog`.
      compliance: { bundleDir: consumerDir, timeoutSeconds: 1, maxConcurrency: 1 },
    },
    visibilityTimeoutSeconds,
    schedules: false,
    queueDepthIntervalMs: 0,
  });
  sqs = new SQSClient({
    region: stack.stackInfo.aws.region,
    endpoint: stack.stackInfo.aws.sqsEndpoint,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
});

after(async () => {
  sqs?.destroy();
  await stack?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const customer = (): string => `+1415${String(Math.floor(Math.random() * 10_000_000)).padStart(7, "0")}`;

/** Posts a webhook the way Twilio does: form body, signature over the public URL + the exact query. */
const deliver = (
  params: FormInput,
  options: { query?: string; token?: string; headers?: Record<string, string | string[]> } = {},
) => {
  const target = `${inboundPath}${options.query ? `?${options.query}` : ""}`;
  const signature = sign(
    `${stack.stackInfo.publicWebhookBaseUrl}${target}`,
    params,
    options.token ?? stack.stackInfo.twilio.authToken,
  );
  return sendRaw(stack.apiUrl, {
    target,
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "X-Twilio-Signature": signature,
      "User-Agent": "TwilioProxy/1.1",
      ...options.headers,
    },
    body: encodeForm(params),
  });
};

/** An inbound SMS whose text scripts the consumer (see the fixture). */
const sms = (from: string, script: string): FormInput =>
  inboundSms({
    From: from,
    Body: `${script} ${randomUUID()}`,
    AccountSid: stack.stackInfo.twilio.accountSid,
  });

type Delivery = { readonly entry: InvocationRecord; readonly record: SQSRecord; readonly index: number };

const batchesOfConsumer = (): InvocationRecord[] =>
  stack.invocations.filter((entry) => entry.functionName === "compliance" && entry.trigger === "sqs");

const bodyOf = (record: SQSRecord): string => {
  const envelope: { params?: { Body?: unknown } } = JSON.parse(record.body);
  return String(envelope.params?.Body ?? "");
};

/** Every delivery of the message whose text is `text`, oldest first. */
const deliveriesOf = (text: unknown): Delivery[] =>
  batchesOfConsumer().flatMap((entry) =>
    (entry.batch?.records ?? []).flatMap((record, index) =>
      bodyOf(record) === text ? [{ entry, record, index }] : [],
    ),
  );

const wasDeleted = (delivery: Delivery): boolean =>
  delivery.entry.batch?.deleted.includes(delivery.record.messageId) ?? false;

/** The payload-2.0 event of the first webhook invocation matching `predicate`. */
const httpEvent = async (
  predicate: (event: APIGatewayProxyEventV2) => boolean,
): Promise<APIGatewayProxyEventV2> => {
  const asEvent = (entry: InvocationRecord): APIGatewayProxyEventV2 | undefined =>
    entry.trigger === "http" ? JSON.parse(JSON.stringify(entry.event)) : undefined;
  const entry = await stack.waitForInvocation((candidate) => {
    const event = asEvent(candidate);
    return event !== undefined && predicate(event);
  });
  const event = asEvent(entry);
  assert.ok(event);
  return event;
};

const eventually = async <T>(check: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/**
 * Delivers `messages` (in order) while the consumer's mapping is disabled, so they are all waiting in
 * the queue when it polls again and arrive as one batch, as a backlog does.
 */
const backlog = async (messages: readonly FormInput[]): Promise<void> => {
  await stack.setEventSourceEnabled("compliance", false);
  try {
    for (const params of messages) assert.equal((await deliver(params)).status, 200);
  } finally {
    await stack.setEventSourceEnabled("compliance", true);
  }
};

/** Waits until `params` was delivered and deleted (processed) — FIFO makes it a barrier for its group. */
const processed = (params: FormInput): Promise<Delivery> =>
  eventually(() => deliveriesOf(params.Body).find(wasDeleted), `"${params.Body}" to be processed`);

describe("webhook intake through the local API Gateway", () => {
  test("a signed inbound SMS gets TwiML and reaches the consent queue's consumer as a Lambda SQS record", async () => {
    const from = customer();
    const params = sms(from, "hello");
    const reply = await deliver(params);
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers["content-type"]), /^text\/xml/);
    assert.equal(reply.text, '<?xml version="1.0" encoding="UTF-8"?><Response/>');

    const { record, entry } = await processed(params);
    assert.equal(entry.batch?.verdict.kind, "all-succeeded");
    const envelope = JSON.parse(record.body);
    assert.equal(envelope.eventId, `msg-in:${params.MessageSid}`);
    assert.equal(record.eventSource, "aws:sqs");
    assert.match(record.eventSourceARN, /^arn:aws:sqs:us-east-1:\d{12}:local-consent\.fifo$/);
    assert.equal(record.awsRegion, "us-east-1");
    assert.equal(record.md5OfBody, createHash("md5").update(record.body).digest("hex"));
    assert.equal(record.attributes.ApproximateReceiveCount, "1");
    assert.equal(record.attributes.MessageGroupId, `addr:${from}`);
    assert.equal(record.attributes.MessageDeduplicationId, envelope.eventId);
    assert.match(record.attributes.SequenceNumber ?? "", /^\d+$/);
    assert.match(record.attributes.SentTimestamp, /^\d{13}$/);
    assert.match(record.attributes.ApproximateFirstReceiveTimestamp, /^\d{13}$/);
    assert.deepEqual(record.messageAttributes, {});
  });

  test("a duplicate delivery is acknowledged but processed once", async () => {
    const from = customer();
    const params = sms(from, "twice");
    assert.equal((await deliver(params)).status, 200);
    assert.equal((await deliver(params)).status, 200);
    // Same customer = same FIFO group: once a later message is processed, an enqueued duplicate would
    // already have been delivered before it.
    const barrier = sms(from, "barrier");
    assert.equal((await deliver(barrier)).status, 200);
    await processed(barrier);
    assert.equal(deliveriesOf(params.Body).length, 1);
  });

  test("a bad signature is refused with 403 and nothing is enqueued", async () => {
    const from = customer();
    const forged = sms(from, "forged");
    const reply = await deliver(forged, { token: "not-the-auth-token" });
    assert.equal(reply.status, 403);
    const barrier = sms(from, "barrier");
    assert.equal((await deliver(barrier)).status, 200);
    await processed(barrier);
    assert.deepEqual(deliveriesOf(forged.Body), []);
  });

  test("the event carries the raw query string byte for byte, lower-cased joined headers and the base64 body", async () => {
    const query = "name=O'Hara&q=a+b&plus=%2B&k=1&k=2&empty=";
    const params = sms(customer(), "fidelity");
    const reply = await deliver(params, {
      query,
      headers: { "X-Custom-Header": ["first", "second"], Cookie: "a=1; b=2" },
    });
    // The webhook verified a signature computed over exactly this query string.
    assert.equal(reply.status, 200, reply.text);
    assert.ok(reply.headers["apigw-requestid"]);

    const event = await httpEvent((candidate) => candidate.rawQueryString === query);
    assert.equal(event.version, "2.0");
    assert.equal(event.rawPath, inboundPath);
    assert.equal(event.rawQueryString, query);
    assert.equal(event.routeKey, `POST ${inboundPath}`);
    assert.deepEqual(event.queryStringParameters, {
      name: "O'Hara",
      q: "a b",
      plus: "+",
      k: "1,2",
      empty: "",
    });
    assert.equal(event.headers["x-custom-header"], "first,second");
    assert.ok(event.headers["x-twilio-signature"]);
    assert.equal(event.headers["content-type"], "application/x-www-form-urlencoded");
    assert.equal(event.headers["user-agent"], "TwilioProxy/1.1");
    assert.deepEqual(event.cookies, ["a=1", "b=2"]);
    assert.equal(event.headers.cookie, undefined);
    assert.ok(Object.keys(event.headers).every((name) => name === name.toLowerCase()));
    assert.equal(event.isBase64Encoded, true);
    assert.equal(Buffer.from(event.body ?? "", "base64").toString("utf8"), encodeForm(params));
    const context = event.requestContext;
    assert.equal(context.domainName, new URL(stack.apiUrl).host);
    assert.equal(context.stage, "$default");
    assert.equal(context.routeKey, `POST ${inboundPath}`);
    assert.equal(context.http.method, "POST");
    assert.equal(context.http.path, inboundPath);
    assert.equal(context.http.protocol, "HTTP/1.1");
    assert.equal(context.http.sourceIp, "127.0.0.1");
    assert.equal(context.http.userAgent, "TwilioProxy/1.1");
    assert.match(context.accountId, /^\d{12}$/);
    assert.ok(context.requestId && context.apiId && context.domainPrefix);
    assert.ok(Math.abs(context.timeEpoch - Date.now()) < 10_000);
    assert.match(context.time, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
  });

  test("a JSON body arrives as text; only the webhook routes exist; bodies over 10 MB are refused", async () => {
    await sendRaw(stack.apiUrl, {
      target: "/twilio/conversations?probe=json",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: '{"probe":"json"}',
    });
    const event = await httpEvent((candidate) => candidate.rawQueryString === "probe=json");
    assert.equal(event.isBase64Encoded, false);
    assert.equal(event.body, '{"probe":"json"}');

    for (const [method, target] of [
      ["GET", inboundPath],
      ["POST", "/twilio/unknown"],
      ["POST", `${inboundPath}/`],
    ] as const) {
      const reply = await sendRaw(stack.apiUrl, { method, target });
      assert.equal(reply.status, 404, `${method} ${target}`);
      assert.deepEqual(JSON.parse(reply.text), { message: "Not Found" });
    }
    const huge = await sendRaw(stack.apiUrl, {
      target: inboundPath,
      body: Buffer.alloc(10 * 1024 * 1024 + 1, 97),
    });
    assert.equal(huge.status, 413);
    assert.deepEqual(JSON.parse(huge.text), { message: "Request Entity Too Large" });
  });
});

describe("the SQS event source mapping (ReportBatchItemFailures, FIFO)", () => {
  test("a failing record alone is retried and lands in the DLQ after maxReceiveCount; its batch-mates are processed once", async () => {
    const poison = sms(customer(), "fail-always");
    const mates = [sms(customer(), "ok"), sms(customer(), "ok")];
    await backlog([mates[0] ?? {}, poison, mates[1] ?? {}]);

    const first = await eventually(
      () => deliveriesOf(poison.Body)[0],
      "the first delivery of the failing record",
    );
    const mateIds = new Set(
      mates.map((params) => deliveriesOf(params.Body)[0]?.record.messageId).filter((id) => id !== undefined),
    );
    assert.equal(first.entry.batch?.verdict.kind, "partial", "the three records shared a batch");
    assert.equal(first.entry.batch?.records.length, 3);
    assert.deepEqual(new Set(first.entry.batch?.deleted), mateIds);
    assert.deepEqual(first.entry.batch?.retained, [first.record.messageId]);

    const maxReceiveCount = Queues.consent.maxReceiveCount;
    const deadLetters = await receiveDeadLetters(poison.Body, 20_000);
    assert.equal(deadLetters, 1, "the failing record is in the DLQ");
    const attempts = deliveriesOf(poison.Body);
    assert.equal(attempts.length, maxReceiveCount);
    assert.deepEqual(
      attempts.map((attempt) => attempt.record.attributes.ApproximateReceiveCount),
      Array.from({ length: maxReceiveCount }, (_, index) => String(index + 1)),
    );
    assert.ok(attempts.every((attempt) => !wasDeleted(attempt)));
    for (const mate of mates) {
      const deliveries = deliveriesOf(mate.Body);
      assert.equal(deliveries.length, 1, "a batch-mate is delivered once");
      assert.ok(deliveries.every(wasDeleted));
    }
  });

  test("FIFO: a group stops at its first failure, later messages of the group wait, other groups go on", async () => {
    const alice = customer();
    const bob = customer();
    const [a1, a2, a3] = [sms(alice, "ok"), sms(alice, "fail-once"), sms(alice, "ok")];
    const b1 = sms(bob, "ok");
    await backlog([a1, b1, a2, a3]);

    const firstBatch = await eventually(() => deliveriesOf(a2.Body)[0], "alice's second message").then(
      (d) => d.entry,
    );
    const bodies = (firstBatch.batch?.records ?? []).map(bodyOf);
    assert.deepEqual(
      bodies.filter((body) => body.length > 0 && [a1.Body, a2.Body, a3.Body].includes(body)),
      [a1.Body, a2.Body, a3.Body],
      "one batch holds several messages of a group, in order",
    );
    assert.equal(firstBatch.batch?.verdict.kind, "partial");
    const retained = new Set(firstBatch.batch?.retained);
    assert.ok(retained.has(deliveriesOf(a2.Body)[0]?.record.messageId ?? "-"));
    assert.ok(retained.has(deliveriesOf(a3.Body)[0]?.record.messageId ?? "-"));

    // Sent while a2 and a3 are in flight: the group is locked, so a4 must not overtake them.
    const a4 = sms(alice, "ok");
    assert.equal((await deliver(a4)).status, 200);
    const done = await processed(a4);
    const retry = done.entry.batch?.records.map(bodyOf) ?? [];
    assert.deepEqual(retry, [a2.Body, a3.Body, a4.Body], "the retry keeps the group's order");
    assert.equal(done.entry.batch?.records[0]?.attributes.ApproximateReceiveCount, "2");
    assert.equal(deliveriesOf(a1.Body).length, 1);
    assert.equal(deliveriesOf(b1.Body).length, 1);
    assert.ok(wasDeleted(await processed(b1)));
  });

  test("a thrown error fails the whole batch: every record comes back and is processed on retry", async () => {
    const thrower = sms(customer(), "throw-once");
    const mate = sms(customer(), "ok");
    await backlog([thrower, mate]);
    const retried = await processed(mate);
    const failed = deliveriesOf(mate.Body)[0];
    assert.ok(failed);
    assert.equal(failed.entry.invocation.result.status, "error");
    assert.equal(failed.entry.batch?.verdict.kind, "all-failed");
    assert.deepEqual(failed.entry.batch?.deleted, []);
    assert.ok(
      failed.entry.batch?.records.some((record) => bodyOf(record) === thrower.Body),
      "same batch",
    );
    assert.equal(retried.record.attributes.ApproximateReceiveCount, "2");
    assert.ok(wasDeleted(await processed(thrower)));
  });

  test("an itemIdentifier that is not in the batch fails the whole batch", async () => {
    const liar = sms(customer(), "unknown-id-once");
    const first = await deliver(liar).then(() =>
      eventually(() => deliveriesOf(liar.Body)[0], "the first delivery"),
    );
    assert.equal(first.entry.batch?.verdict.kind, "all-failed");
    const retried = await processed(liar);
    assert.equal(retried.record.attributes.ApproximateReceiveCount, "2");
  });

  test("the function timeout is enforced: the invocation fails like Lambda's and a fresh environment retries", async () => {
    const sleeper = sms(customer(), "sleep-once");
    await deliver(sleeper);
    const timedOut = await eventually(() => deliveriesOf(sleeper.Body)[0], "the first delivery");
    const { result } = timedOut.entry.invocation;
    assert.equal(result.status, "timeout");
    assert.equal(
      result.status === "timeout" ? result.error.errorMessage : "",
      "Task timed out after 1.00 seconds",
    );
    assert.ok(timedOut.entry.invocation.durationMs >= 950 && timedOut.entry.invocation.durationMs < 2500);
    assert.equal(timedOut.entry.batch?.verdict.kind, "all-failed");
    const retried = await processed(sleeper);
    assert.ok(
      retried.entry.invocation.initDurationMs !== undefined,
      "the retry ran in a new environment (cold start)",
    );
  });
});

/** Reads the consent DLQ until the message with `text` is there; returns how many copies were seen. */
const receiveDeadLetters = async (text: unknown, timeoutMs: number): Promise<number> => {
  const deadline = Date.now() + timeoutMs;
  let seen = 0;
  while (Date.now() < deadline && seen === 0) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.stackInfo.aws.deadLetterQueues.consent,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    seen += Messages.filter((message) => {
      const envelope: { params?: { Body?: unknown } } = JSON.parse(message.Body ?? "{}");
      return envelope.params?.Body === text;
    }).length;
  }
  return seen;
};
