import { startLocalStack } from "../../../lib/local/stack.ts";
import { startHarness } from "../run.ts";
import { encodeForm, inboundSmsParams, signatureFor, twilioHeaders } from "../../../lib/local/twilio-webhooks.ts";
const h = await startHarness(startLocalStack);
const { accountSid, authToken } = h.stack.stackInfo.twilio;
const base = h.stack.stackInfo.publicWebhookBaseUrl;
for (let i = 0; i < 30; i++) {
  const params = inboundSmsParams({ accountSid, from: `+1415666${String(1000 + (i % 5))}`, to: "+15005550006", body: `m${i}`, mediaUrls: [] });
  const t0 = Date.now();
  const r = await fetch(h.stack.apiUrl + "/twilio/messaging/inbound", { method: "POST", headers: twilioHeaders(signatureFor(authToken, base + "/twilio/messaging/inbound", params)), body: encodeForm(params) });
  await r.text();
  const t1 = Date.now();
  let seen: number | undefined;
  while (Date.now() - t0 < 15000) { h.observer.poll(); if (h.observer.copies.has(params.MessageSid)) { seen = Date.now(); break; } await new Promise((r) => setTimeout(r, 10)); }
  const inv = h.stack.invocations.filter((x) => x.trigger === "http").at(-1);
  console.log(i, r.status, "front", t1 - t0, "fn", inv?.invocation.durationMs, "init", inv?.invocation.initDurationMs, "e2e", seen === undefined ? "none" : seen - t0);
}
const b = h.observer.batches.slice(-6).map((x) => `${x.functionName}:${x.records}`); console.log(b.join(" "));
const inv = h.stack.invocations.filter((x) => x.trigger === "sqs").slice(-6).map((x) => `${x.functionName} ${x.invocation.durationMs}ms init=${x.invocation.initDurationMs}`); console.log(inv.join("\n"));
await h.stop();
