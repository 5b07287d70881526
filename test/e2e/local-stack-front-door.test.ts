// The local API Gateway (HTTP API, payload 2.0) with an echo fixture in place of the webhook function
// (test/e2e/fixtures/http-echo.ts): how the function's answer is mapped back — structured results,
// base64 bodies, cookies, inferred 200s — and HTTP API's own answers when the integration fails.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { type LocalStack, startLocalStack } from "../../lib/local/stack.ts";
import { bundle } from "../../lib/tools/build.ts";
import { sendRaw } from "./fixtures/http.ts";

let stack: LocalStack;
let workDir: string;

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), "local-stack-front-door-"));
  const echoDir = join(workDir, "echo");
  await bundle("test/e2e/fixtures/http-echo.ts", echoDir);
  stack = await startLocalStack({
    port: 0,
    twilio: { mode: "emulator", port: 0 },
    // The 2.5 s "slow" answer outlasts the shortened integration timeout but not the function's.
    functions: { webhook: { bundleDir: echoDir, timeoutSeconds: 5 } },
    integrationTimeoutSeconds: 1,
    schedules: false,
    queueDepthIntervalMs: 0,
  });
});

after(async () => {
  await stack?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const conversations = "/twilio/conversations";

const call = (
  fixture: string,
  options: { target?: string; headers?: Record<string, string>; body?: string } = {},
) =>
  sendRaw(stack.apiUrl, {
    target: options.target ?? conversations,
    headers: { "x-fixture": fixture, ...options.headers },
    ...(options.body === undefined ? {} : { body: options.body }),
  });

describe("the local HTTP API front door", () => {
  test("the event it builds is what the function receives", async () => {
    const reply = await call("echo", {
      target: `${conversations}?b=2&a=1&a=3`,
      headers: { "Content-Type": "text/plain; charset=utf-8", "X-Forwarded-For": "203.0.113.9" },
      body: "plain text stays text ✓",
    });
    assert.equal(reply.status, 200);
    const event: APIGatewayProxyEventV2 = JSON.parse(reply.text);
    assert.equal(event.rawQueryString, "b=2&a=1&a=3");
    assert.deepEqual(event.queryStringParameters, { b: "2", a: "1,3" });
    assert.equal(event.isBase64Encoded, false);
    assert.equal(event.body, "plain text stays text ✓");
    assert.equal(event.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert.equal(event.headers["x-forwarded-proto"], "http");
    assert.match(event.headers["x-amzn-trace-id"] ?? "", /^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$/);
    assert.equal(event.cookies, undefined);
  });

  test("binary bodies are passed base64-encoded, byte for byte", async () => {
    const bytes = Buffer.from([0, 255, 13, 10, 128, 37, 50, 66]);
    const reply = await sendRaw(stack.apiUrl, {
      target: conversations,
      headers: { "x-fixture": "echo", "content-type": "application/octet-stream" },
      body: bytes,
    });
    const event: APIGatewayProxyEventV2 = JSON.parse(reply.text);
    assert.equal(event.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(event.body ?? "", "base64"), bytes);
  });

  test("a structured result maps to status, headers, cookies and a decoded base64 body", async () => {
    const reply = await call("structured");
    assert.equal(reply.status, 202);
    assert.equal(reply.headers["x-mixed-case"], "yes");
    assert.equal(reply.headers["x-number"], "7");
    assert.deepEqual(reply.headers["set-cookie"], ["session=abc; Path=/", "theme=dark"]);
    assert.deepEqual(reply.body, Buffer.from([0, 1, 2, 250, 255]));
  });

  test("a result without statusCode becomes a 200 application/json answer", async () => {
    const reply = await call("plain");
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers["content-type"]), /^application\/json/);
    assert.deepEqual(JSON.parse(reply.text), { hello: "world" });
  });

  test("a function error and a malformed result are HTTP API's 500", async () => {
    for (const fixture of ["throw", "malformed"]) {
      const reply = await call(fixture);
      assert.equal(reply.status, 500, fixture);
      assert.deepEqual(JSON.parse(reply.text), { message: "Internal Server Error" });
    }
  });

  test("an integration slower than the integration timeout is HTTP API's 503", async () => {
    const started = Date.now();
    const reply = await call("slow");
    assert.equal(reply.status, 503);
    assert.deepEqual(JSON.parse(reply.text), { message: "Service Unavailable" });
    assert.ok(
      Date.now() - started < 2_000,
      "answered at the integration timeout, not when the function ended",
    );
  });
});
