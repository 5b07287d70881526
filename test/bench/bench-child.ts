// One benchmark process for a Lambda-style target: imports a bundle (timed: import + first invocation =
// cold start), then runs warm sequential invocations in-process and writes the timings as JSON to the
// file named in argv. Runs in its own process so every cold start is a real one and the bundle's log
// lines can be discarded.
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { apiGatewayEventFor, floorEvent, signedInboundPost } from "./bench-events.ts";

const [target, bundlePath, warmupArg, countArg, outFile] = process.argv.slice(2);
if (!target || !bundlePath || !outFile)
  throw new Error("usage: bench-child <target> <bundle> <warmup> <count> <out>");
const warmup = Number(warmupArg);
const count = Number(countArg);
const token = process.env.TWILIO_AUTH_TOKEN ?? "";
const publicBase = process.env.PUBLIC_WEBHOOK_BASE_URL ?? "";

const makeEvent = (): unknown =>
  target === "floor" ? floorEvent() : apiGatewayEventFor(signedInboundPost(token, publicBase));
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
