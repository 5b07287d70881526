import { after, before, test } from "node:test";
import { randomUUID } from "node:crypto";
import { startLocalStack, type LocalStack } from "/work/main/lib/local/stack.ts";
import { bundle } from "/work/main/lib/tools/build.ts";
import { encodeForm, inboundSms, sign } from "/work/main/test/support/twilio-webhooks.ts";
import { sendRaw } from "/work/main/test/e2e/fixtures/http.ts";
let stack: LocalStack;
before(async () => {
  const t0 = Date.now();
  await bundle("test/e2e/fixtures/sqs-consumer.ts", "/tmp/dbgc");
  console.log("bundle", Date.now() - t0);
  stack = await startLocalStack({ port: 0, twilio: { mode: "emulator", port: 0 }, functions: { compliance: { bundleDir: "/tmp/dbgc", timeoutSeconds: 1, maxConcurrency: 1 } }, visibilityTimeoutSeconds: 1, schedules: false, queueDepthIntervalMs: 0 });
  console.log("stack", Date.now() - t0);
});
after(() => stack.stop());
const deliver = (from: string, body: string) => {
  const params = inboundSms({ From: from, Body: `${body} ${randomUUID()}` });
  const target = "/twilio/messaging/inbound";
  return sendRaw(stack.apiUrl, { target, headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sign(stack.stackInfo.publicWebhookBaseUrl + target, params, stack.stackInfo.twilio.authToken) }, body: encodeForm(params) });
};
test("x", async () => {
  const t = Date.now();
  const log = (m: string) => console.log(Date.now() - t, m);
  await deliver("+1000", "ok"); log("warm");
  await new Promise(r => setTimeout(r, 1500));
  await deliver("+1001", "hold-once"); log("hold sent");
  await deliver("+1002", "ok"); log("a sent");
  await deliver("+1003", "ok"); log("b sent");
  await new Promise(r => setTimeout(r, 2500));
  for (const e of stack.invocations) if (e.trigger === "sqs") console.log(e.invocation.startedAt - t, e.batch?.records.map(r => JSON.parse(r.body).params.Body.slice(0, 12) + " " + r.attributes.MessageGroupId));
});
