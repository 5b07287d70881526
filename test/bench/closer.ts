// `node test/bench/closer.ts`: the closer use case with its real adapters (conversation registry and
// cursor store on DynamoDB Local, the twilio SDK against the Twilio emulator with a realistic round-trip
// delay) closing stale conversations at several configured mutation rates. Prints, per scenario, the
// achieved mutations/s and closes/s against the configured rate, and how 20429 bursts were absorbed.
//
// Knobs: BENCH_CLOSER_SECONDS (target length of each scenario, default 8), BENCH_CLOSER_LATENCY_MS
// (emulated Twilio round trip, default 80), BENCH_CLOSER_RATES (default "10,25,30,50").
import { dynamoCloserCursorStore } from "../../lib/adapters/closer-cursor-store.ts";
import { twilioConversationCloser } from "../../lib/adapters/closer-twilio.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import { twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import { type CloserRunSettings, type CloserSummary, runCloser } from "../../lib/app/closer.ts";
import { systemClock, tokenBucket } from "../../lib/app/rate-limiter.ts";
import { CloserDefaults } from "../../lib/config/closer-config.ts";
import { parseTwilioRestConfig } from "../../lib/config/twilio-config.ts";
import { startDynamoDbLocal } from "../../lib/local/dynamodb-local.ts";
import { localClients, provisionTables } from "../../lib/local/provision.ts";
import { startTwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";

const seconds = Number(process.env.BENCH_CLOSER_SECONDS ?? 8);
const latencyMs = Number(process.env.BENCH_CLOSER_LATENCY_MS ?? 80);
const rates = (process.env.BENCH_CLOSER_RATES ?? "10,25,30,50").split(",").map(Number);

const account = { accountSid: "AC00000000000000000000000000000000", authToken: "bench-token" };
const day = 24 * 60 * 60_000;

type Scenario = {
  readonly name: string;
  readonly rate: number;
  readonly notice: boolean;
  /** 20429s injected on conversation mutations at the start of the run. */
  readonly burst429: number;
};

const scenarios: Scenario[] = [
  ...rates.map((rate) => ({ name: `close only @${rate}/s`, rate, notice: false, burst429: 0 })),
  { name: "notice + close @25/s", rate: 25, notice: true, burst429: 0 },
  { name: "close @25/s, 60× 20429", rate: 25, notice: false, burst429: 60 },
];

const emulator = await startTwilioEmulator({ port: 0, ...account });
const dynamodb = await startDynamoDbLocal();
const clients = localClients({ dynamodb: dynamodb.endpoint, sqs: "http://127.0.0.1:1" });
const twilio = twilioClientProvider(
  parseTwilioRestConfig({
    TWILIO_ACCOUNT_SID: account.accountSid,
    TWILIO_AUTH_TOKEN: account.authToken,
    TWILIO_API_BASE_URL: emulator.url,
  }),
);

const createConversations = async (count: number): Promise<string[]> => {
  const client = await twilio();
  const sids: string[] = [];
  for (let start = 0; start < count; start += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, count - start) }, (_, i) =>
        client.conversations.v1.conversations.create({ friendlyName: `bench ${start + i}` }),
      ),
    );
    sids.push(...batch.map((conversation) => conversation.sid));
  }
  return sids;
};

const runScenario = async (scenario: Scenario, index: number) => {
  const perClose = scenario.notice ? 2 : 1;
  const conversations = Math.max(20, Math.round((scenario.rate * seconds) / perClose));
  const tableName = (await provisionTables(clients.dynamodb, `bench${index}`)).conversations;
  const registry = dynamoConversationRegistry(clients.dynamodb, tableName);
  const sids = await createConversations(conversations);
  const now = Date.now();
  await registry.seed(
    sids.map((conversationSid, n) => ({
      conversationSid,
      tenantId: "bench",
      state: "active",
      lastActivityAt: now - 2 * day - n,
      stateAt: now - 3 * day,
      priority: undefined,
    })),
  );

  emulator.faults.clear();
  // Every request to the emulator takes a realistic round trip; the closer's concurrency must hide it.
  emulator.faults.delay({ ms: latencyMs, count: 1_000_000 });
  if (scenario.burst429 > 0) {
    emulator.faults.inject({ status: 429, count: scenario.burst429, match: { method: "POST" } });
  }
  const settings: CloserRunSettings = {
    policy: {
      defaults: { enabled: true, idleMs: day, neverClosePriorities: [], states: ["active", "inactive"] },
      tenants: {},
    },
    concurrency: CloserDefaults.concurrency,
    pageSize: CloserDefaults.pageSize,
    closingMessage: scenario.notice ? "This conversation was closed after a day without replies." : undefined,
    verifyWithTwilio: true,
    safetyMarginMs: CloserDefaults.safetyMarginSeconds * 1000,
    claimLeaseMs: CloserDefaults.claimLeaseMs,
    retry: CloserDefaults.retry,
  };
  const started = performance.now();
  const summary: CloserSummary = await runCloser(
    {
      registry,
      twilio: twilioConversationCloser(twilio),
      cursors: dynamoCloserCursorStore(clients.dynamodb, tableName),
      limiter: tokenBucket({
        ratePerSecond: scenario.rate,
        clock: systemClock,
        adaptive: { floorPerSecond: 1 },
      }),
      clock: systemClock,
      settings,
    },
    { dryRun: false, cursor: undefined, maxCloses: undefined },
    { remainingMs: () => 900_000 },
  );
  const elapsed = (performance.now() - started) / 1000;
  const stillOpen = sids.filter((sid) => emulator.state.conversation(sid)?.state !== "closed").length;
  return {
    scenario: scenario.name,
    "rate (mut/s)": scenario.rate,
    conversations,
    closed: summary.closed,
    failed: summary.failed,
    "left open": stillOpen,
    "20429s": summary.throttled,
    mutations: summary.mutations,
    seconds: Number(elapsed.toFixed(2)),
    "mutations/s": Number((summary.mutations / elapsed).toFixed(2)),
    "closes/s": Number((summary.closed / elapsed).toFixed(2)),
    "% of rate": `${((100 * summary.mutations) / elapsed / scenario.rate).toFixed(1)} %`,
  };
};

try {
  // Unreported warm-up: first SDK client, first DynamoDB calls and the emulator's first requests.
  await runScenario({ name: "warm-up", rate: 50, notice: true, burst429: 0 }, scenarios.length);
  const rows = [];
  for (const [index, scenario] of scenarios.entries()) {
    process.stderr.write(`running ${scenario.name}…\n`);
    rows.push(await runScenario(scenario, index));
  }
  console.log(
    `\ncloser throughput: real adapters, DynamoDB Local registry, Twilio emulator with ${latencyMs} ms per request, ` +
      `concurrency ${CloserDefaults.concurrency}, Twilio re-check on (one read per close, not rate-limited)\n`,
  );
  console.table(rows);
  console.log(
    "mutations/s counts every POST the limiter let through (notices, closes, retries of 20429); " +
      "'% of rate' is achieved mutations/s over the configured rate, start-up (first page) included.",
  );
} finally {
  clients.dynamodb.destroy();
  await emulator.stop();
  await dynamodb.stop();
}
