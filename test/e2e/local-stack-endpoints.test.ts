// The local stack behind `wrapEndpoint`: an HTTP proxy in front of each AWS emulator sees every call the
// stack makes (provisioning, the event source mapping's pollers, the functions through their
// AWS_ENDPOINT_URL_*), and can drop chosen calls. Dropping the mapping's DeleteMessageBatch right after
// the consumer returned shows what Lambda does when it cannot delete a processed batch: the batch is
// still reported, and its records are delivered again after the visibility timeout.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request as forward, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { SQSRecord } from "aws-lambda";
import { silentConsole } from "../../lib/local/console.ts";
import type { AwsService, InvocationRecord, LocalStack } from "../../lib/local/stack.ts";
import { startLocalStack } from "../../lib/local/stack.ts";
import { bundle, distDir } from "../../lib/tools/build.ts";
import { encodeForm, inboundSms, sign } from "../support/twilio-webhooks.ts";
import { sendRaw } from "./fixtures/http.ts";

const inboundPath = "/twilio/messaging/inbound";

/** An HTTP proxy that records each AWS JSON-protocol call by its X-Amz-Target and can drop some. */
type RecordingProxy = {
  readonly url: string;
  /** X-Amz-Target of every call that reached the proxy, oldest first. */
  readonly targets: string[];
  /** Calls whose connection was dropped instead of forwarded. */
  readonly dropped: string[];
  /** While set, a call for which it returns true has its connection destroyed, unanswered. */
  drop: ((target: string) => boolean) | undefined;
  stop(): Promise<void>;
};

const startRecordingProxy = async (targetEndpoint: string): Promise<RecordingProxy> => {
  const target = new URL(targetEndpoint);
  const targets: string[] = [];
  const dropped: string[] = [];
  const proxy: { drop: RecordingProxy["drop"] } = { drop: undefined };
  const server: Server = createServer((incoming, outgoing) => {
    const amzTarget = String(incoming.headers["x-amz-target"] ?? "");
    targets.push(amzTarget);
    if (proxy.drop?.(amzTarget) === true) {
      dropped.push(amzTarget);
      incoming.socket.destroy();
      return;
    }
    const upstream = forward(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    upstream.on("error", () => incoming.socket.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${address.port}`,
    targets,
    dropped,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
};

let stack: LocalStack;
let workDir: string;
const proxies = new Map<AwsService, RecordingProxy>();
const emulatorEndpoints = new Map<AwsService, string>();
const stackErrors: string[] = [];

const proxyFor = (service: AwsService): RecordingProxy => {
  const proxy = proxies.get(service);
  assert.ok(proxy, `no ${service} proxy`);
  return proxy;
};

before(async () => {
  assert.ok(
    existsSync(join(distDir("webhook"), "index.mjs")),
    "dist/functions/webhook/index.mjs is missing: run npm run build first",
  );
  workDir = await mkdtemp(join(tmpdir(), "local-stack-endpoints-"));
  const consumerDir = join(workDir, "consumer");
  await bundle("test/e2e/fixtures/sqs-consumer.ts", consumerDir);
  stack = await startLocalStack({
    port: 0,
    twilio: { mode: "emulator", port: 0 },
    functions: { compliance: { bundleDir: consumerDir, timeoutSeconds: 1, maxConcurrency: 1 } },
    visibilityTimeoutSeconds: 1,
    settings: { TENANT_CONFIG: '{"defaultTenant":"acme"}', CLOSER_IDLE_MINUTES: "30" },
    schedules: false,
    queueDepthIntervalMs: 0,
    console: { ...silentConsole, error: (message) => stackErrors.push(message) },
    wrapEndpoint: async (service, endpoint) => {
      emulatorEndpoints.set(service, endpoint);
      const proxy = await startRecordingProxy(endpoint);
      proxies.set(service, proxy);
      return proxy.url;
    },
  });
});

after(async () => {
  await stack?.stop();
  await Promise.all([...proxies.values()].map((proxy) => proxy.stop()));
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const customer = (): string => `+1415${String(Math.floor(Math.random() * 10_000_000)).padStart(7, "0")}`;

/** Posts a signed inbound SMS whose text scripts the consumer (test/e2e/fixtures/sqs-consumer.ts). */
const deliverSms = async (script: string): Promise<string> => {
  const params = inboundSms({
    From: customer(),
    Body: `${script} ${randomUUID()}`,
    AccountSid: stack.stackInfo.twilio.accountSid,
  });
  const reply = await sendRaw(stack.apiUrl, {
    target: inboundPath,
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "X-Twilio-Signature": sign(
        `${stack.stackInfo.publicWebhookBaseUrl}${inboundPath}`,
        params,
        stack.stackInfo.twilio.authToken,
      ),
    },
    body: encodeForm(params),
  });
  assert.equal(reply.status, 200);
  return String(params.Body);
};

const bodyOf = (record: SQSRecord): string => {
  const envelope: { params?: { Body?: unknown } } = JSON.parse(record.body);
  return String(envelope.params?.Body ?? "");
};

const consumerBatchWith =
  (text: string, receiveCount: string) =>
  (entry: InvocationRecord): boolean =>
    entry.functionName === "compliance" &&
    entry.trigger === "sqs" &&
    (entry.batch?.records ?? []).some(
      (record) => bodyOf(record) === text && record.attributes.ApproximateReceiveCount === receiveCount,
    );

describe("wrapEndpoint", () => {
  test("provisioning, the pollers, the functions and the stack file all use the wrapped endpoints", async () => {
    const text = await deliverSms("ok");
    const batch = await stack.waitForInvocation(consumerBatchWith(text, "1"));
    assert.equal(batch.batch?.deleted.length, 1);

    const sqs = proxyFor("sqs");
    const dynamodb = proxyFor("dynamodb");
    const { aws, functions } = stack.stackInfo;
    assert.equal(aws.sqsEndpoint, sqs.url);
    assert.equal(aws.dynamodbEndpoint, dynamodb.url);
    assert.notEqual(sqs.url, emulatorEndpoints.get("sqs"));
    for (const url of [...Object.values(aws.queues), ...Object.values(aws.deadLetterQueues)]) {
      assert.ok(url.startsWith(`${sqs.url}/000000000000/`), `${url} goes through the proxy`);
    }
    assert.equal(functions.webhook?.env.AWS_ENDPOINT_URL_SQS, sqs.url);
    assert.equal(functions.webhook?.env.AWS_ENDPOINT_URL_DYNAMODB, dynamodb.url);

    // Provisioning, then the webhook function's own calls, then the mapping's poller.
    for (const call of ["CreateQueue", "SendMessage", "ReceiveMessage", "DeleteMessageBatch"]) {
      assert.ok(sqs.targets.includes(`AmazonSQS.${call}`), `SQS ${call} went through the proxy`);
    }
    for (const call of ["CreateTable", "PutItem"]) {
      assert.ok(dynamodb.targets.includes(`DynamoDB_20120810.${call}`), `DynamoDB ${call} went through it`);
    }
  });
});

describe("the SQS event source mapping when deleting a processed batch fails", () => {
  test("the batch is still reported with the failed deletes, logged, and delivered again after the visibility timeout", async () => {
    const sqs = proxyFor("sqs");
    // Every DeleteMessageBatch (and the SDK's retries of it) loses its connection: the consumer has
    // returned, so this is a drop right after the function ran, and nothing else is deleted meanwhile.
    sqs.drop = (target) => target === "AmazonSQS.DeleteMessageBatch";
    let first: InvocationRecord;
    try {
      const text = await deliverSms("ok");
      first = await stack.waitForInvocation(consumerBatchWith(text, "1"));
    } finally {
      sqs.drop = undefined;
    }
    assert.ok(sqs.dropped.length > 0, "a delete was dropped");
    const [record] = first.batch?.records ?? [];
    assert.ok(record);
    assert.equal(first.invocation.result.status, "ok");
    assert.equal(first.batch?.verdict.kind, "all-succeeded");
    assert.deepEqual(first.batch?.deleted, []);
    assert.deepEqual(first.batch?.deleteFailed, [record.messageId]);
    assert.deepEqual(first.batch?.retained, [record.messageId]);
    assert.ok(
      stackErrors.some((line) => line.includes("compliance") && line.includes("could not delete")),
      `the failed delete is logged (errors: ${JSON.stringify(stackErrors)})`,
    );

    // As on AWS: the undeleted record comes back once its visibility timeout (1 s) has passed.
    const again = await stack.waitForInvocation(consumerBatchWith(bodyOf(record), "2"));
    const retried = again.batch?.records.find((candidate) => candidate.messageId === record.messageId);
    assert.ok(retried, "the same message is delivered again");
    assert.deepEqual(again.batch?.deleted, [record.messageId]);
    assert.deepEqual(again.batch?.deleteFailed, []);
  });
});

test("deployer settings reach exactly the functions that read them, as CDK hands them out", () => {
  const envOf = (name: string) => stack.stackInfo.functions[name]?.env ?? {};
  for (const name of ["webhook", "compliance", "mirror", "closer"]) {
    assert.equal(envOf(name).TENANT_CONFIG, '{"defaultTenant":"acme"}', name);
  }
  assert.equal(envOf("closer").CLOSER_IDLE_MINUTES, "30");
  assert.equal(envOf("webhook").CLOSER_IDLE_MINUTES, undefined);
});
