// One benchmark process: imports a bundle (timed: import + first invocation = cold start), then runs
// warm sequential invocations and writes the timings as JSON to the file named in argv. Runs in its own
// process so every cold start is a real one and the bundle's log lines can be discarded.
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { expectedSignature } from "../../lib/domain/signature.ts";

const [target, bundlePath, warmupArg, countArg, outFile] = process.argv.slice(2);
if (!target || !bundlePath || !outFile)
  throw new Error("usage: bench-child <target> <bundle> <warmup> <count> <out>");
const warmup = Number(warmupArg);
const count = Number(countArg);
const token = process.env.TWILIO_AUTH_TOKEN ?? "";
const publicBase = process.env.PUBLIC_WEBHOOK_BASE_URL ?? "";

const inboundParams = () => {
  const sid = `SM${randomUUID().replaceAll("-", "")}`;
  return {
    ToCountry: "US",
    SmsMessageSid: sid,
    NumMedia: "0",
    SmsSid: sid,
    SmsStatus: "received",
    Body: "Hello, I would like to change my delivery address please",
    To: "+15005550006",
    NumSegments: "1",
    MessageSid: sid,
    AccountSid: `AC${"a".repeat(32)}`,
    From: `+1415555${String(Math.floor(Math.random() * 10000)).padStart(4, "0")}`,
    ApiVersion: "2010-04-01",
  };
};

const webhookEvent = () => {
  const params = inboundParams();
  const path = "/twilio/messaging/inbound";
  const body = new URLSearchParams(params).toString();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": expectedSignature(token, `${publicBase}${path}`, params),
      host: "bench.local",
    },
    requestContext: { http: { method: "POST", path }, requestId: randomUUID(), timeEpoch: Date.now() },
    body: Buffer.from(body).toString("base64"),
    isBase64Encoded: true,
  };
};

/** The floor gets the envelope the webhook would build, so both send the same bytes. */
const floorEvent = () => {
  const params = inboundParams();
  const eventId = `msg-in:${params.MessageSid}`;
  const body = JSON.stringify({ v: 1, eventId, kind: "messaging.inbound", receivedAt: Date.now(), params });
  return { eventId, groupId: `addr:${params.From}`, body };
};

const makeEvent = target === "floor" ? floorEvent : webhookEvent;
const context = () => ({
  awsRequestId: randomUUID(),
  functionName: target,
  getRemainingTimeInMillis: () => 10_000,
});

const events = Array.from({ length: 1 + warmup + count }, makeEvent);
const started = performance.now();
const module = await import(pathToFileURL(bundlePath).href);
const first = await module.handler(events[0], context());
const coldMs = performance.now() - started;
if (first.statusCode !== 200) throw new Error(`first invocation answered ${first.statusCode}`);

const warm: number[] = [];
for (let i = 1; i < events.length; i += 1) {
  const t0 = performance.now();
  const result = await module.handler(events[i], context());
  const elapsed = performance.now() - t0;
  if (result.statusCode !== 200) throw new Error(`invocation ${i} answered ${result.statusCode}`);
  if (i > warmup) warm.push(elapsed);
}
await writeFile(outFile, JSON.stringify({ coldMs, warm, rssBytes: process.memoryUsage().rss }));
