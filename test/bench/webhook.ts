// `npm run bench`: the built webhook bundle against the floor (the same PutItem + SendMessage issued
// directly, bundled the same way) and against the two builds a user would otherwise write, on DynamoDB
// Local + fauxqs (+ Debian's redis-server), in one run with the same events:
//   (a) Express + twilio.validateRequest + Redis SET NX EX, a real HTTP server driven over loopback;
//   (b) Middy + Powertools idempotency (DynamoDB) + twilio.validateRequest, bundled like ours.
// Lambda builds are measured in-process (what Lambda runs and bills). Express has no in-process form, so
// the HTTP comparison puts our bundle and the floor behind the thinnest HTTP front (lambda-http.ts) and
// Express is compared with those. Reports warm p50/p95/p99, cold start (fresh process: import + first
// invocation or response), bundle size and RSS, with ratios to ours and to the floor, plus the budgets
// from issue #2. Runs rotate through the targets so machine noise hits all alike.
import { spawn } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateTableCommand, PutItemCommand, UpdateTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { createClient } from "redis";
import { startDynamoDbLocal } from "../../lib/local/dynamodb-local.ts";
import { localClients, provision } from "../../lib/local/provision.ts";
import { startSqsLocal } from "../../lib/local/sqs-local.ts";
import { bundle, distDir } from "../../lib/tools/build.ts";
import { RedisInstallHint, startRedisServer } from "./competitors/express-redis/redis-server.ts";
import { median, percentile } from "./stats.ts";

const coldRuns = Number(process.env.BENCH_COLD_RUNS ?? 12);
const warmRounds = Number(process.env.BENCH_WARM_ROUNDS ?? 4);
const warmCount = Number(process.env.BENCH_WARM_COUNT ?? 500);
const warmup = 100;

type ChildResult = { coldMs: number; warm: number[]; rssBytes: number };

type Target = {
  readonly name: string;
  readonly label: string;
  readonly transport: "in-process" | "http";
  readonly bundleDir: string;
};

const bundleBytes = async (dir: string): Promise<number> => {
  let total = 0;
  for (const file of await readdir(dir))
    if (file.endsWith(".mjs")) total += (await stat(join(dir, file))).size;
  return total;
};

const runChild = async (
  target: Target,
  env: Record<string, string>,
  count: number,
  scratch: string,
): Promise<ChildResult> => {
  const out = join(scratch, `${target.name}-${Math.random().toString(36).slice(2)}.json`);
  const script = target.transport === "http" ? "test/bench/bench-http-child.ts" : "test/bench/bench-child.ts";
  const child = spawn(
    process.execPath,
    [
      script,
      target.name,
      join(target.bundleDir, "index.mjs"),
      String(count === 0 ? 0 : warmup),
      String(count),
      out,
    ],
    { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] },
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`${target.name} benchmark process exited with ${code}`);
  return JSON.parse(await readFile(out, "utf8"));
};

/** The table Powertools' DynamoDBPersistenceLayer expects by default: pk `id`, TTL on `expiration`. */
const provisionIdempotencyTable = async (endpoints: { dynamodb: string; sqs: string }, name: string) => {
  const { dynamodb, sqs } = localClients(endpoints);
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      }),
    );
    await dynamodb.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: "expiration", Enabled: true },
      }),
    );
  } finally {
    dynamodb.destroy();
    sqs.destroy();
  }
};

/**
 * The storage round trip each build pays per request, measured from this process: DynamoDB Local's
 * conditional PutItem (ours, the floor, Powertools) against Redis SET NX EX (Express). Explains the warm
 * columns: the stores differ (a JVM emulator vs an in-memory C server), not only the code.
 */
const storageRoundTrips = async (
  endpoints: { dynamodb: string; sqs: string },
  table: string,
  redisUrl: string | undefined,
  count = 300,
) => {
  const { dynamodb, sqs } = localClients(endpoints);
  const timed = async (call: (i: number) => Promise<unknown>) => {
    const samples: number[] = [];
    for (let i = 0; i < count + 50; i += 1) {
      const t0 = performance.now();
      await call(i);
      if (i >= 50) samples.push(performance.now() - t0);
    }
    return samples;
  };
  try {
    const run = Math.random().toString(36).slice(2);
    const putItem = await timed((i) =>
      dynamodb.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            eventId: { S: `rt-${run}-${i}` },
            expiresAt: { N: String(Math.floor(Date.now() / 1000) + 604800) },
          },
          ConditionExpression: "attribute_not_exists(eventId)",
        }),
      ),
    );
    let setNx: number[] | undefined;
    if (redisUrl !== undefined) {
      const redis = createClient({ url: redisUrl });
      await redis.connect();
      setNx = await timed((i) => redis.set(`rt-${run}-${i}`, "1", { NX: true, EX: 604800 }));
      await redis.quit();
    }
    return { putItem, setNx };
  } finally {
    dynamodb.destroy();
    sqs.destroy();
  }
};

/** Rotates the run order each round so no target always runs first (or right after a cold JVM). */
const rotated = <T>(items: readonly T[], by: number): T[] =>
  items.map((_, i) => items[(i + by) % items.length]).filter((item): item is T => item !== undefined);

const main = async () => {
  const scratch = await mkdtemp(join(tmpdir(), "bench-"));
  const started = await Promise.allSettled([startDynamoDbLocal(), startSqsLocal(), startRedisServer()]);
  const [dynamoResult, sqsResult, redisResult] = started;
  if (
    dynamoResult.status === "rejected" ||
    sqsResult.status === "rejected" ||
    redisResult.status === "rejected"
  ) {
    // Stop whatever did start, so no emulator outlives a failed benchmark.
    await Promise.all(
      started.map((result) => (result.status === "fulfilled" ? result.value?.stop() : undefined)),
    );
    await rm(scratch, { recursive: true, force: true });
    throw started.find((result) => result.status === "rejected")?.reason;
  }
  const dynamodb = dynamoResult.value;
  const sqs = sqsResult.value;
  const redis = redisResult.value;
  try {
    const endpoints = { dynamodb: dynamodb.endpoint, sqs: sqs.endpoint };
    const resources = await provision(endpoints, sqs.queueUrl, "bench");
    const idempotencyTable = "bench-idempotency";
    await provisionIdempotencyTable(endpoints, idempotencyTable);

    const dirs = {
      floor: join(scratch, "floor"),
      middy: join(scratch, "middy-powertools"),
      express: join(scratch, "express-redis"),
    };
    await bundle("test/bench/floor-handler.ts", dirs.floor);
    await bundle("test/bench/competitors/middy-powertools/handler.ts", dirs.middy);
    await bundle("test/bench/competitors/express-redis/server.ts", dirs.express);
    // A private copy: a rebuild of dist/ during the run (another terminal's `npm test`) must not swap it.
    const webhookDir = join(scratch, "webhook");
    await cp(distDir("webhook"), webhookDir, { recursive: true });

    const env = {
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: dynamodb.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      PUBLIC_WEBHOOK_BASE_URL: "https://bench.example.test",
      DEDUPE_TABLE_NAME: resources.tableNames.dedupe,
      CONSENT_TABLE_NAME: resources.tableNames.consent,
      CONSENT_QUEUE_URL: resources.queueUrls.consent,
      MIRROR_QUEUE_URL: resources.queueUrls.mirror,
      TWILIO_AUTH_TOKEN: "bench-auth-token",
      IDEMPOTENCY_TABLE_NAME: idempotencyTable,
      AWS_LAMBDA_FUNCTION_NAME: "bench-middy-powertools",
      ...(redis === undefined ? {} : { REDIS_URL: redis.url }),
    };

    const targets: Target[] = [
      {
        name: "floor",
        label: "floor (PutItem + SendMessage)",
        transport: "in-process",
        bundleDir: dirs.floor,
      },
      { name: "webhook", label: "**webhook bundle (ours)**", transport: "in-process", bundleDir: webhookDir },
      {
        name: "middy-powertools",
        label: "(b) Middy + Powertools idempotency",
        transport: "in-process",
        bundleDir: dirs.middy,
      },
      { name: "floor-http", label: "floor, thin HTTP front", transport: "http", bundleDir: dirs.floor },
      { name: "webhook-http", label: "**ours, thin HTTP front**", transport: "http", bundleDir: webhookDir },
      ...(redis === undefined
        ? []
        : [
            {
              name: "express-redis",
              label: "(a) Express + Redis",
              transport: "http",
              bundleDir: dirs.express,
            } as const,
          ]),
    ];
    if (redis === undefined) {
      console.error(
        `redis-server not found: skipping the Express + Redis column (install: ${RedisInstallHint})`,
      );
    }

    type Samples = { cold: number[]; warm: number[]; rss: number[] };
    const results = new Map<string, Samples>(
      targets.map((target) => [target.name, { cold: [], warm: [], rss: [] }]),
    );
    const resultOf = (name: string) => {
      const result = results.get(name);
      if (result === undefined) throw new Error(`no results for ${name}`);
      return result;
    };
    // One discarded run per target first: DynamoDB Local's JVM and fauxqs warm up on it, not on
    // whichever target happens to be measured first.
    for (const target of targets) await runChild(target, env, warmup, scratch);
    for (let i = 0; i < coldRuns; i += 1) {
      for (const target of rotated(targets, i)) {
        resultOf(target.name).cold.push((await runChild(target, env, 0, scratch)).coldMs);
      }
    }
    for (let i = 0; i < warmRounds; i += 1) {
      for (const target of rotated(targets, i)) {
        const result = await runChild(target, env, warmCount, scratch);
        resultOf(target.name).warm.push(...result.warm);
        resultOf(target.name).rss.push(result.rssBytes);
      }
    }

    const roundTrips = await storageRoundTrips(endpoints, resources.tableNames.dedupe, redis?.url);

    type Summary = { p50: number; p95: number; p99: number; cold: number; bundleKiB: number; rssMiB: number };
    const summaries = new Map<string, Summary>();
    for (const target of targets) {
      const result = resultOf(target.name);
      summaries.set(target.name, {
        p50: median(result.warm),
        p95: percentile(result.warm, 95),
        p99: percentile(result.warm, 99),
        cold: median(result.cold),
        bundleKiB: (await bundleBytes(target.bundleDir)) / 1024,
        rssMiB: median(result.rss) / 2 ** 20,
      });
    }
    const summaryOf = (name: string): Summary => {
      const summary = summaries.get(name);
      if (summary === undefined) throw new Error(`no summary for ${name}`);
      return summary;
    };

    // The issue #2 table, unchanged: ours against the floor, with the budgets.
    const floor = summaryOf("floor");
    const ours = summaryOf("webhook");
    const row = (label: string, floorValue: number, oursValue: number, unit: string, budget?: number) => {
      const ratio = oursValue / floorValue;
      const verdict = budget === undefined ? "" : ratio <= budget ? `≤ ${budget} ok` : `> ${budget} OVER`;
      return `| ${label} | ${floorValue.toFixed(2)} ${unit} | ${oursValue.toFixed(2)} ${unit} | ${ratio.toFixed(2)}× | ${verdict} |`;
    };
    const oursBundleBytes = ours.bundleKiB * 1024;
    const lines = [
      `webhook benchmark — ${resultOf("webhook").warm.length} warm invocations and ${coldRuns} cold starts per target, Node ${process.version}`,
      "",
      "| metric | floor (PutItem + SendMessage) | webhook bundle | ratio | budget |",
      "|---|---|---|---|---|",
      row("warm p50", floor.p50, ours.p50, "ms"),
      row("warm p95", floor.p95, ours.p95, "ms", 1.15),
      row("warm p99", floor.p99, ours.p99, "ms"),
      row("cold start (median)", floor.cold, ours.cold, "ms", 1.15),
      row("bundle (.mjs total)", floor.bundleKiB, ours.bundleKiB, "KiB"),
      row("RSS after warm run", floor.rssMiB, ours.rssMiB, "MiB"),
      "",
      `bundle budget: ${ours.bundleKiB.toFixed(1)} KiB ${oursBundleBytes <= 600 * 1024 ? "≤ 600 KiB ok" : "> 600 KiB OVER"}`,
      "",
    ];

    // Head-to-head: every cell is value (× ours, × floor) against the same transport's ours and floor.
    const metrics: { key: keyof Summary; unit: string; digits: number }[] = [
      { key: "p50", unit: "ms", digits: 2 },
      { key: "p95", unit: "ms", digits: 2 },
      { key: "p99", unit: "ms", digits: 2 },
      { key: "cold", unit: "ms", digits: 0 },
      { key: "bundleKiB", unit: "KiB", digits: 0 },
      { key: "rssMiB", unit: "MiB", digits: 1 },
    ];
    const headToHead = (transport: Target["transport"], oursName: string, floorName: string) => {
      const base = summaryOf(oursName);
      const floorBase = summaryOf(floorName);
      return targets
        .filter((target) => target.transport === transport)
        .map((target) => {
          const summary = summaryOf(target.name);
          const cells = metrics.map(({ key, unit, digits }) => {
            const value = summary[key];
            return `${value.toFixed(digits)} ${unit} (${(value / base[key]).toFixed(2)}× / ${(value / floorBase[key]).toFixed(2)}×)`;
          });
          return `| ${target.label} | ${cells.join(" | ")} |`;
        });
    };
    const header =
      "| build | warm p50 | warm p95 | warm p99 | cold start | bundle (.mjs) | RSS after warm run |";
    const rule = "|---|---|---|---|---|---|---|";
    lines.push(
      "head-to-head — same signed inbound-SMS events (fresh MessageSid each), same DynamoDB Local + fauxqs FIFO queue;",
      "each cell: value (× ours / × floor) against ours and the floor on the same transport",
      "",
      "Lambda invoke, in-process (what Lambda runs; cold = import + first invocation):",
      "",
      header,
      rule,
      ...headToHead("in-process", "webhook", "floor"),
      "",
      "over loopback HTTP, keep-alive, one request at a time (cold = import + listen + first response;",
      "our bundle and the floor sit behind test/bench/competitors/lambda-http.ts, the thinnest HTTP API-like front):",
      "",
      header,
      rule,
      ...headToHead("http", "webhook-http", "floor-http"),
    );
    if (redis === undefined) {
      lines.push("", `(a) Express + Redis skipped: redis-server is not installed (${RedisInstallHint}).`);
    } else {
      const redisRss = await redis.rssBytes();
      lines.push(
        "",
        `(a) also needs a Redis server: redis-server ${redis.version}${redisRss === undefined ? "" : `, RSS ${(redisRss / 2 ** 20).toFixed(1)} MiB after the run`} (not in the RSS column).`,
      );
    }
    lines.push(
      `storage round trip from one process (p50 / p95): DynamoDB Local conditional PutItem ${median(roundTrips.putItem).toFixed(2)} / ${percentile(roundTrips.putItem, 95).toFixed(2)} ms` +
        (roundTrips.setNx === undefined
          ? ""
          : `, Redis SET NX EX ${median(roundTrips.setNx).toFixed(2)} / ${percentile(roundTrips.setNx, 95).toFixed(2)} ms`) +
        " — the warm columns compare stores as well as code.",
      "bundle sizes: esbuild ESM, minified, all .mjs chunks (same bundle() as the functions); the Lambda builds",
      'include the AWS SDK clients they use, twilio is bundled whole in (a) and (b) as `import twilio from "twilio"`.',
    );
    console.log(lines.join("\n"));
  } finally {
    await Promise.all([dynamodb.stop(), sqs.stop(), redis?.stop()]);
    await rm(scratch, { recursive: true, force: true });
  }
};

await main();
