// `npm run faults [-- <scenario> …]`: each fault as a repeatable scenario with its own PASS/FAIL, on a
// fresh local stack per scenario, under the same signed webhook mix as `npm run load` (smaller, with
// Twilio-like re-sends of any 5xx). The stack's `wrapEndpoint` puts DynamoDB Local and fauxqs behind TCP
// proxies (tcp-proxy.ts), so "stops and comes back" is a cut connection with the emulator's state kept,
// as for a dependency that is unreachable for a while. Every scenario checks: 5xx only while a
// dependency is down, nothing acknowledged that was not enqueued, every acknowledged event took effect
// exactly once (no duplicate posts, per-sender order), retries drained, poison in the DLQ with its
// reason, and events in = events processed + events in the DLQ. Exits 1 if any scenario fails.
import { setTimeout as sleep } from "node:timers/promises";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { type AwsService, type LocalStackOptions, startLocalStack } from "../../lib/local/stack.ts";
import {
  type Check,
  checkRun,
  type Harness,
  measure,
  printChecks,
  runTraffic,
  startHarness,
} from "../load/run.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

type Window = { readonly from: number; to: number };

type ScenarioContext = {
  readonly harness: Harness;
  /** The proxy in front of each AWS emulator, which an outage cuts and restores. */
  readonly proxies: ReadonlyMap<AwsService, TcpProxy>;
  /** Periods a dependency was down; 5xx are acceptable only inside them (plus a reconnect grace). */
  readonly windows: Window[];
  /** Event ids put on a queue outside the webhook, expected to end in a DLQ. */
  readonly injected: string[];
  /** SQS message ids of the injected records, for finding their failure log lines. */
  readonly injectedMessageIds: Map<string, string>;
};

type Scenario = {
  readonly name: string;
  readonly summary: string;
  readonly stack: LocalStackOptions;
  readonly events: number;
  readonly ratePerSecond: number;
  readonly during: (context: ScenarioContext, startedAt: number) => Promise<void>;
  readonly extraChecks?: (context: ScenarioContext) => Check[];
};

// Worker timeouts short enough for a test, visibility above them (as in AWS, where it is 6× the
// timeout) so a record is never handed out again while an invocation still works on it.
const workers = (timeoutSeconds: number): LocalStackOptions["functions"] => ({
  compliance: { timeoutSeconds },
  mirror: { timeoutSeconds },
});

const graceMs = 2_000;

const outage =
  (service: AwsService, afterMs: number, downMs: number) =>
  async (context: ScenarioContext, startedAt: number): Promise<void> => {
    await sleep(Math.max(0, startedAt + afterMs - Date.now()));
    const proxy = context.proxies.get(service);
    if (proxy === undefined) throw new Error(`the stack did not ask for a ${service} endpoint`);
    const window: Window = { from: Date.now(), to: Number.POSITIVE_INFINITY };
    context.windows.push(window);
    await proxy.cut();
    await sleep(downMs);
    await proxy.restore();
    window.to = Date.now();
  };

const fiveHundredsDuringOutage = (
  context: ScenarioContext,
  result: { requests: readonly { status: number; startedAt: number }[] },
): Check => {
  const during = result.requests.filter(
    (request) =>
      request.status >= 500 &&
      context.windows.some(
        (w) => request.startedAt >= w.from - graceMs && request.startedAt <= w.to + graceMs,
      ),
  ).length;
  return {
    name: "the outage was felt at the front door (5xx while down, re-sent and then accepted)",
    pass: during > 0,
    detail: `${during} 5xx answers during the outage`,
  };
};

const scenarios: readonly Scenario[] = [
  {
    name: "sqs-outage",
    summary: "the SQS emulator is unreachable for 4 s during the load, then comes back (state kept)",
    stack: { visibilityTimeoutSeconds: 6, functions: workers(5) },
    events: 240,
    ratePerSecond: 12,
    during: outage("sqs", 6_000, 4_000),
  },
  {
    name: "dynamodb-outage",
    summary: "DynamoDB Local is unreachable for 4 s during the load, then comes back (state kept)",
    stack: { visibilityTimeoutSeconds: 6, functions: workers(5) },
    events: 240,
    ratePerSecond: 12,
    during: outage("dynamodb", 6_000, 4_000),
  },
  {
    name: "twilio-faults",
    summary:
      "the Twilio emulator answers bursts of 20429 and 5xx, and slow responses near the 5 s worker timeout",
    stack: { visibilityTimeoutSeconds: 6, functions: workers(5) },
    events: 240,
    ratePerSecond: 12,
    during: async ({ harness }, startedAt) => {
      const faults = harness.emulator.faults;
      await sleep(Math.max(0, startedAt + 3_000 - Date.now()));
      faults.inject({ status: 429, code: 20429, count: 40 });
      await sleep(4_000);
      faults.inject({ status: 500, count: 15 });
      faults.inject({ status: 503, count: 15 });
      await sleep(4_000);
      // Answered 4 s late (the request itself is processed at once): near the 5 s timeout.
      faults.delay({ ms: 4_000, count: 6 });
    },
    extraChecks: ({ harness }) => {
      const pending = harness.emulator.faults.pending();
      const timedOut = harness.observer.batches.filter((batch) =>
        /timed out/i.test(batch.reason ?? ""),
      ).length;
      return [
        {
          name: "every injected Twilio fault was hit",
          pass: pending.failures === 0 && pending.delays === 0,
          detail: `unused: ${pending.failures} failures, ${pending.delays} delays; Twilio answers by status: ${[...harness.observer.twilioCalls.entries()].map(([s, n]) => `${s}×${n}`).join(" ")}; ${timedOut} worker invocations timed out`,
        },
      ];
    },
  },
  {
    name: "worker-killed",
    summary:
      "mirror invocations are killed mid-batch (a Twilio call outlives the 5 s timeout; Lambda ends the environment)",
    // A 1 s batching window fills the mirror's batches, so each kill hits a batch with other records in it.
    stack: {
      visibilityTimeoutSeconds: 6,
      functions: { compliance: { timeoutSeconds: 5 }, mirror: { timeoutSeconds: 5, batchWindowSeconds: 1 } },
    },
    events: 240,
    ratePerSecond: 12,
    during: async ({ harness }, startedAt) => {
      for (const at of [4_000, 9_000, 14_000]) {
        await sleep(Math.max(0, startedAt + at - Date.now()));
        // The post is applied by the emulator at once but answered after the timeout: the worker dies
        // with its batch half done, and the retry must find the copy it already wrote.
        harness.emulator.faults.delay({
          ms: 8_000,
          count: 1,
          match: { method: "POST", pathPrefix: "/v1/Conversations/" },
        });
      }
    },
    extraChecks: ({ harness }) => {
      const killed = harness.observer.batches.filter(
        (batch) =>
          batch.functionName === "mirror" &&
          batch.verdict === "all-failed" &&
          /timed out/i.test(batch.reason ?? ""),
      );
      return [
        {
          name: "a worker was killed mid-batch (timed out with other records in the batch)",
          pass: killed.some((batch) => batch.records > 1),
          detail: `${killed.length} mirror invocations timed out; batch sizes ${killed.map((b) => b.records).join(", ") || "none"}`,
        },
      ];
    },
  },
  {
    name: "poison",
    summary:
      "a record no retry can fix on each queue (not an envelope; an ungated inbound) lands in the DLQ with its reason",
    stack: { visibilityTimeoutSeconds: 4, functions: workers(3) },
    events: 120,
    ratePerSecond: 12,
    during: async ({ harness, injected, injectedMessageIds }, startedAt) => {
      await sleep(Math.max(0, startedAt + 2_000 - Date.now()));
      const { queues } = harness.stack.stackInfo.aws;
      const records = [
        { queue: queues.consent, id: "poison:not-an-envelope", body: "this is not an envelope" },
        {
          queue: queues.mirror,
          id: "poison:ungated-inbound",
          body: JSON.stringify({
            v: 1,
            eventId: "poison:ungated-inbound",
            kind: "messaging.inbound",
            receivedAt: Date.now(),
            params: {
              MessageSid: `SM${"0".repeat(32)}`,
              From: "+14155550199",
              To: "+15005550006",
              Body: "x",
            },
          }),
        },
      ];
      for (const record of records) {
        if (record.queue === undefined) throw new Error("the stack has no such queue");
        const sent = await harness.aws.sqs.send(
          new SendMessageCommand({
            QueueUrl: record.queue,
            MessageBody: record.body,
            MessageGroupId: record.id,
            MessageDeduplicationId: record.id,
          }),
        );
        // A body that is not JSON is reported in the DLQ by its message id.
        const dlqId = record.body.startsWith("{") ? record.id : `unparsable:${sent.MessageId}`;
        injected.push(dlqId);
        if (sent.MessageId !== undefined) injectedMessageIds.set(dlqId, sent.MessageId);
      }
    },
    extraChecks: ({ harness, injectedMessageIds }) =>
      [...injectedMessageIds.entries()].map(([id, messageId]) => {
        const lines = harness.observer.logs.filter((log) => log.line.includes(messageId));
        const reason = lines
          .map((log) => /"reason":"([^"]*)"/.exec(log.line)?.[1])
          .find((r) => r !== undefined);
        return {
          name: `poison ${id}: its failure and reason are logged by the consumer`,
          pass: reason !== undefined,
          detail:
            reason === undefined ? "no log line names it" : `${lines.length} log lines, reason "${reason}"`,
        };
      }),
  },
];

const selected = process.argv.slice(2);
const unknown = selected.filter((name) => !scenarios.some((scenario) => scenario.name === name));
if (unknown.length > 0) {
  console.error(
    `unknown scenario(s) ${unknown.join(", ")}; known: ${scenarios.map((s) => s.name).join(", ")}`,
  );
  process.exit(2);
}
const toRun =
  selected.length === 0 ? scenarios : scenarios.filter((scenario) => selected.includes(scenario.name));

const verdicts: { name: string; pass: boolean }[] = [];
for (const scenario of toRun) {
  console.log(`\n${scenario.name}: ${scenario.summary}`);
  const proxies = new Map<AwsService, TcpProxy>();
  const stopProxies = () => Promise.all([...proxies.values()].map((proxy) => proxy.stop()));
  const harness = await startHarness(startLocalStack, {
    ...scenario.stack,
    wrapEndpoint: async (service, endpoint) => {
      const proxy = await startTcpProxy(endpoint);
      proxies.set(service, proxy);
      return proxy.url;
    },
  }).catch(async (error: unknown) => {
    await stopProxies();
    throw error;
  });
  const context: ScenarioContext = {
    harness,
    proxies,
    windows: [],
    injected: [],
    injectedMessageIds: new Map(),
  };
  let pass = false;
  try {
    const result = await runTraffic(harness, {
      events: scenario.events,
      senders: 30,
      ratePerSecond: scenario.ratePerSecond,
      seed: 7,
      retry5xx: true,
      drainTimeoutMs: 90_000,
      during: (startedAt) => scenario.during(context, startedAt),
    });
    const m = measure(result, harness.observer);
    const fives = result.drive.requests.filter((r) => r.status >= 500 || r.status === 0).length;
    console.log(
      `  ${result.plan.length} events, ${m.requests} requests (${fives} answered 5xx or dropped, re-sent); front door p50 ${m.frontDoor.p50.toFixed(0)} ms p99 ${m.frontDoor.p99.toFixed(0)} ms; mirrored e2e p50 ${m.mirrored.p50.toFixed(0)} ms p95 ${m.mirrored.p95.toFixed(0)} ms`,
    );
    const windows = context.windows;
    const checks = checkRun(result, harness.observer, {
      allow5xx: (startedAt, endedAt) => windows.some((w) => endedAt >= w.from && startedAt <= w.to + graceMs),
      injected: context.injected,
    });
    if (windows.length > 0) checks.push(fiveHundredsDuringOutage(context, result.drive));
    checks.push(...(scenario.extraChecks?.(context) ?? []));
    pass = printChecks(checks);
  } catch (error) {
    console.log(
      `  FAIL  the scenario did not complete: ${error instanceof Error ? error.stack : String(error)}`,
    );
  } finally {
    await harness.stop();
    await stopProxies();
  }
  console.log(`${scenario.name}: ${pass ? "PASS" : "FAIL"}`);
  verdicts.push({ name: scenario.name, pass });
}

const passed = verdicts.filter((v) => v.pass).length;
console.log(`\nfaults: ${verdicts.map((v) => `${v.name} ${v.pass ? "PASS" : "FAIL"}`).join(", ")}`);
console.log(`${passed} passed, ${verdicts.length - passed} failed`);
process.exit(passed === verdicts.length ? 0 : 1);
