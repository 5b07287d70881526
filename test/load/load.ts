// `npm run load`: a bounded mix of signed webhooks driven through the local stack's HTTP front door at a
// stated rate for a stated time, loopback only. Reports throughput, front-door latency p50/p95/p99,
// end-to-end latency to the side effect (a mirrored message in the Twilio emulator, a suppression seen
// through the onParticipantAdd pre-event) p50/p95, and the checks: every distinct event processed
// exactly once in effect, no duplicate posts, per-sender order kept, queues drained. Exits 1 on a failed
// check.
//
// Knobs: LOAD_RATE (distinct events per second, default 30), LOAD_SECONDS (default 30), LOAD_SENDERS
// (default 60), LOAD_SEED (default 1), LOAD_DRAIN_SECONDS (default 90), LOAD_WARMUP_EVENTS (default 80, sent
// first at the same rate and not measured).
import { startLocalStack } from "../../lib/local/stack.ts";
import { checkRun, measure, printChecks, runTraffic, startHarness } from "./run.ts";

const rate = Number(process.env.LOAD_RATE ?? 30);
const seconds = Number(process.env.LOAD_SECONDS ?? 30);
const senders = Number(process.env.LOAD_SENDERS ?? 60);
const seed = Number(process.env.LOAD_SEED ?? 1);
const drainSeconds = Number(process.env.LOAD_DRAIN_SECONDS ?? 90);
const warmupEvents = Number(process.env.LOAD_WARMUP_EVENTS ?? 80);
const events = Math.min(20_000, Math.round(rate * seconds));

const ms = (value: number) => `${value.toFixed(0)} ms`;

const harness = await startHarness(startLocalStack);
let ok = false;
try {
  // Warm-up, not measured: brings up every execution environment (each a cold start) so the measured
  // run sees the steady state; its events are checked by the same rules but not reported.
  await runTraffic(harness, {
    events: warmupEvents,
    senders: Math.min(senders, 20),
    ratePerSecond: rate,
    seed: seed + 1000,
    retry5xx: false,
    drainTimeoutMs: drainSeconds * 1000,
  });
  const result = await runTraffic(harness, {
    events,
    senders,
    ratePerSecond: rate,
    seed,
    retry5xx: false,
    drainTimeoutMs: drainSeconds * 1000,
  });
  const counts = new Map<string, number>();
  for (const event of result.plan) counts.set(event.kind, (counts.get(event.kind) ?? 0) + 1);
  const sends = new Map<string, number>();
  for (const request of result.drive.requests) sends.set(request.kind, (sends.get(request.kind) ?? 0) + 1);
  const m = measure(result, harness.observer);
  const lines = [
    `load — ${result.plan.length} distinct events offered at ${rate}/s for ${seconds} s (seed ${seed}), Node ${process.version}, loopback only`,
    `  mix: ${counts.get("inbound") ?? 0} inbound SMS from ${senders} senders + ${counts.get("stop") ?? 0} STOP, ${counts.get("status") ?? 0} status callbacks, ${counts.get("conversation") ?? 0} Conversations events;`,
    `       + ${sends.get("duplicate") ?? 0} exact duplicates (same bytes, after the first answer) + ${sends.get("concurrent") ?? 0} concurrent copies = ${m.requests} requests`,
    `  throughput at the front door: ${m.throughput.toFixed(1)} req/s over ${m.seconds.toFixed(1)} s`,
    `  front-door latency: p50 ${ms(m.frontDoor.p50)}, p95 ${ms(m.frontDoor.p95)}, p99 ${ms(m.frontDoor.p99)}`,
    `  end to end (first send → side effect observed, 20 ms polling):`,
    `    inbound SMS → mirrored into its thread: p50 ${ms(m.mirrored.p50)}, p95 ${ms(m.mirrored.p95)} (n=${m.mirrored.count})`,
    `    status callback → outbound shown on the thread (posted or listed): p50 ${ms(m.outboundStatus.p50)}, p95 ${ms(m.outboundStatus.p95)} (n=${m.outboundStatus.count})`,
    `    STOP → suppression enforced at the front door: p50 ${ms(m.suppression.p50)}, p95 ${ms(m.suppression.p95)} (n=${m.suppression.count})`,
    "  checks:",
  ];
  console.log(lines.join("\n"));
  ok = printChecks(checkRun(result, harness.observer, { strictConsumption: true }));
} finally {
  await harness.stop();
}
console.log(ok ? "load: PASS" : "load: FAIL");
process.exit(ok ? 0 : 1);
