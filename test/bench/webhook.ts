// `npm run bench`: the built webhook bundle against the floor (the same PutItem + SendMessage issued
// directly, bundled the same way), on DynamoDB Local + fauxqs, in one run. Reports warm p50/p95/p99,
// cold start (import + first invocation in a fresh process) and bundle size, as ratios to the floor,
// with the budgets from issue #2. Runs alternate between the two so machine noise hits both alike.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDynamoDbLocal } from "../../lib/local/dynamodb-local.ts";
import { provision } from "../../lib/local/provision.ts";
import { startSqsLocal } from "../../lib/local/sqs-local.ts";
import { bundle, distDir } from "../../lib/tools/build.ts";

const coldRuns = Number(process.env.BENCH_COLD_RUNS ?? 12);
const warmRounds = Number(process.env.BENCH_WARM_ROUNDS ?? 4);
const warmCount = Number(process.env.BENCH_WARM_COUNT ?? 500);
const warmup = 100;

type ChildResult = { coldMs: number; warm: number[]; rssBytes: number };

const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const median = (values: readonly number[]) => percentile(values, 50);

const bundleBytes = async (dir: string): Promise<number> => {
  let total = 0;
  for (const file of await readdir(dir))
    if (file.endsWith(".mjs")) total += (await stat(join(dir, file))).size;
  return total;
};

const runChild = async (
  target: string,
  bundlePath: string,
  env: Record<string, string>,
  count: number,
  scratch: string,
): Promise<ChildResult> => {
  const out = join(scratch, `${target}-${Math.random().toString(36).slice(2)}.json`);
  const child = spawn(
    process.execPath,
    ["test/bench/bench-child.ts", target, bundlePath, String(count === 0 ? 0 : warmup), String(count), out],
    { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] },
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`${target} benchmark process exited with ${code}`);
  return JSON.parse(await readFile(out, "utf8"));
};

const main = async () => {
  const scratch = await mkdtemp(join(tmpdir(), "bench-"));
  const [dynamodb, sqs] = await Promise.all([startDynamoDbLocal(), startSqsLocal()]);
  try {
    const resources = await provision(
      { dynamodb: dynamodb.endpoint, sqs: sqs.endpoint },
      sqs.queueUrl,
      "bench",
    );
    const floorDir = join(scratch, "floor");
    await bundle("test/bench/floor-handler.ts", floorDir);
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
    };
    const targets = {
      floor: join(floorDir, "index.mjs"),
      webhook: join(distDir("webhook"), "index.mjs"),
    } as const;
    const cold: Record<keyof typeof targets, number[]> = { floor: [], webhook: [] };
    const warm: Record<keyof typeof targets, number[]> = { floor: [], webhook: [] };
    const rss: Record<keyof typeof targets, number[]> = { floor: [], webhook: [] };
    for (let i = 0; i < coldRuns; i += 1) {
      for (const target of i % 2 === 0 ? (["floor", "webhook"] as const) : (["webhook", "floor"] as const)) {
        cold[target].push((await runChild(target, targets[target], env, 0, scratch)).coldMs);
      }
    }
    for (let i = 0; i < warmRounds; i += 1) {
      for (const target of i % 2 === 0 ? (["floor", "webhook"] as const) : (["webhook", "floor"] as const)) {
        const result = await runChild(target, targets[target], env, warmCount, scratch);
        warm[target].push(...result.warm);
        rss[target].push(result.rssBytes);
      }
    }
    const size = { floor: await bundleBytes(floorDir), webhook: await bundleBytes(distDir("webhook")) };
    const row = (label: string, floor: number, ours: number, unit: string, budget?: number) => {
      const ratio = ours / floor;
      const verdict = budget === undefined ? "" : ratio <= budget ? `≤ ${budget} ok` : `> ${budget} OVER`;
      return `| ${label} | ${floor.toFixed(2)} ${unit} | ${ours.toFixed(2)} ${unit} | ${ratio.toFixed(2)}× | ${verdict} |`;
    };
    const kib = (bytes: number) => bytes / 1024;
    const lines = [
      `webhook benchmark — ${warm.webhook.length} warm invocations and ${coldRuns} cold starts per target, Node ${process.version}`,
      "",
      "| metric | floor (PutItem + SendMessage) | webhook bundle | ratio | budget |",
      "|---|---|---|---|---|",
      row("warm p50", median(warm.floor), median(warm.webhook), "ms"),
      row("warm p95", percentile(warm.floor, 95), percentile(warm.webhook, 95), "ms", 1.15),
      row("warm p99", percentile(warm.floor, 99), percentile(warm.webhook, 99), "ms"),
      row("cold start (median)", median(cold.floor), median(cold.webhook), "ms", 1.15),
      row("bundle (.mjs total)", kib(size.floor), kib(size.webhook), "KiB"),
      row("RSS after warm run", median(rss.floor) / 2 ** 20, median(rss.webhook) / 2 ** 20, "MiB"),
      "",
      `bundle budget: ${kib(size.webhook).toFixed(1)} KiB ${size.webhook <= 600 * 1024 ? "≤ 600 KiB ok" : "> 600 KiB OVER"}`,
    ];
    console.log(lines.join("\n"));
  } finally {
    await Promise.all([dynamodb.stop(), sqs.stop()]);
    await rm(scratch, { recursive: true, force: true });
  }
};

await main();
