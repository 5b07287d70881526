// `npm start`: builds the functions that exist, brings the local stack up on 127.0.0.1, prints where
// everything is, and streams invocations, queue depths and Twilio calls until Ctrl-C stops it all.
import { existsSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { processEnv } from "../config/env.ts";
import { allSettingNames } from "../function-env.ts";
import { Functions, functionNames, WebhookRoutes } from "../resources.ts";
import { buildFunction, distDir } from "../tools/build.ts";
import { DefaultPorts, portFrom, StartEnvNames, twilioSettingsFrom } from "./cli-env.ts";
import { createConsole, type StackConsole } from "./console.ts";
import { LocalStackError } from "./errors.ts";
import { type LocalStack, startLocalStack } from "./stack.ts";
import { DefaultStackFile } from "./stack-file.ts";

const usage = `Usage: npm start -- [options]

Starts the whole backbone locally: DynamoDB Local, SQS (fauxqs), the Twilio emulator (unless real
Twilio credentials are set), the webhook API on http://127.0.0.1:$PORT, the queue consumers and the
closer's schedule. Writes ${DefaultStackFile} when ready; Ctrl-C stops everything.

Options:
  --schedule-now               run the scheduled closer once as soon as the stack is up
  --visibility-timeout <s>     VisibilityTimeout of the work queues (default: as deployed, 6 × consumer
                               timeout); failed records come back after it, e.g. 5 for fast retries
  --no-build                   run the bundles already in dist/functions
  --quiet                      hide the functions' own log lines
  --raw-logs                   print function log lines exactly as written (default: condensed, EMF
                               metric blocks dropped)
  -h, --help                   show this help

Environment:
  ${StartEnvNames.port}                        API port (default ${DefaultPorts.api})
  ${StartEnvNames.twilioEmulatorPort}        Twilio emulator port (default ${DefaultPorts.twilioEmulator}; 0 = any free port)
  ${StartEnvNames.publicWebhookBaseUrl}     origin Twilio calls, e.g. your ngrok/cloudflared URL (default: the API URL)
  ${StartEnvNames.accountSid} + ${StartEnvNames.authToken} [+ ${StartEnvNames.apiKeySid} + ${StartEnvNames.apiKeySecret}]
                               use real Twilio instead of the emulator
`;

/** Builds, in parallel, every function whose handler exists (others are reported and skipped). */
const buildAvailable = async (out: StackConsole): Promise<void> => {
  const started = performance.now();
  await Promise.all(
    functionNames.map(async (name) => {
      const entry = Functions[name].entry;
      if (!existsSync(entry)) {
        out.warn(`${name}: ${entry} does not exist yet — not built`);
        return;
      }
      const size = await buildFunction(name);
      out.info(
        `built ${distDir(name)}/index.mjs (${(size / 1024).toFixed(0)} KiB) in ${Math.round(performance.now() - started)} ms`,
      );
    }),
  );
};

const summary = (stack: LocalStack, seconds: number, stackFile: string): string => {
  const { stackInfo: info } = stack;
  const functions = Object.entries(info.functions)
    .map(([name, fn]) => `${name} ${fn.available ? "✓" : "✗ (not built)"}`)
    .join("  ");
  const closer = Functions.closer.trigger;
  const twilio =
    info.twilio.apiBaseUrl === null
      ? `real Twilio, account ${info.twilio.accountSid}`
      : `${info.twilio.apiBaseUrl}  (emulator; account ${info.twilio.accountSid}, auth token ${info.twilio.authToken}, number ${info.twilio.phoneNumbers.join(", ")})`;
  return [
    `Local stack ready in ${seconds.toFixed(1)} s`,
    `  Webhook API (HTTP API)  ${info.api}  POST ${Object.keys(WebhookRoutes).join(", ")}`,
    `  Public webhook URL      ${info.publicWebhookBaseUrl}  (Twilio signs this origin; ${StartEnvNames.publicWebhookBaseUrl} overrides)`,
    `  Twilio                  ${twilio}`,
    `  DynamoDB Local          ${info.aws.dynamodbEndpoint}  tables ${Object.values(info.aws.tables).join(", ")}`,
    `  SQS (fauxqs)            ${info.aws.sqsEndpoint}  queues ${Object.values(info.aws.queues)
      .map((url) => url.split("/").pop())
      .join(", ")} (+ DLQs)`,
    `  Functions               ${functions}`,
    `  Schedule                closer every ${closer.rateMinutes} min; now: curl -X POST ${info.api}/_local/schedule/closer?dryRun=true`,
    `  Stack file              ${stackFile}`,
    `Try: npm run simulate -- inbound-sms --from +14155550100 --body "Hello"    (Ctrl-C stops everything)`,
  ].join("\n");
};

const main = async (): Promise<number> => {
  const { values } = parseArgs({
    options: {
      "schedule-now": { type: "boolean", default: false },
      "visibility-timeout": { type: "string" },
      "no-build": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      "raw-logs": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const started = performance.now();
  const env = processEnv();
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const out = createConsole({
    write,
    color: process.stdout.isTTY === true,
    functionLogs: !values.quiet,
    rawFunctionLogs: values["raw-logs"],
  });

  const visibilityText = values["visibility-timeout"];
  const visibilityTimeoutSeconds = visibilityText === undefined ? undefined : Number(visibilityText);
  if (visibilityTimeoutSeconds !== undefined && !Number.isInteger(visibilityTimeoutSeconds)) {
    throw new LocalStackError(`--visibility-timeout must be whole seconds, got "${visibilityText}"`);
  }
  const port = portFrom(env, StartEnvNames.port, DefaultPorts.api);
  const twilio = twilioSettingsFrom(env);
  const publicWebhookBaseUrl = env[StartEnvNames.publicWebhookBaseUrl]?.trim() || undefined;
  // TENANT_CONFIG, CLOSER_* … in npm start's environment reach the functions that read them, as CDK does.
  const settings = Object.fromEntries(
    [...allSettingNames].flatMap((name) => {
      const value = env[name]?.trim();
      return value ? [[name, value]] : [];
    }),
  );

  // The build runs while Java and the emulators start; the stack waits for it before loading functions.
  const built = values["no-build"] ? Promise.resolve() : buildAvailable(out);
  built.catch(() => undefined);

  const stack = await startLocalStack({
    functionsReady: built,
    port,
    portVariable: StartEnvNames.port,
    twilio,
    ...(publicWebhookBaseUrl === undefined ? {} : { publicWebhookBaseUrl }),
    ...(visibilityTimeoutSeconds === undefined ? {} : { visibilityTimeoutSeconds }),
    stackFile: DefaultStackFile,
    console: out,
    settings,
  });
  write(summary(stack, (performance.now() - started) / 1000, DefaultStackFile));
  if (values["schedule-now"]) {
    if (stack.stackInfo.functions.closer?.available) await stack.runSchedule("closer");
    else out.warn("--schedule-now: the closer is not built, nothing to run");
  }

  return new Promise<number>((resolveExit) => {
    let firstSignalAt: number | undefined;
    const shutdown = (signal: string): void => {
      // Ctrl-C reaches us twice under `npm start` (from the terminal and forwarded by npm); only a
      // second press, a moment later, means "do not wait".
      if (firstSignalAt !== undefined) {
        if (Date.now() - firstSignalAt < 1000) return;
        out.warn(`${signal} again: exiting without waiting`);
        rmSync(DefaultStackFile, { force: true });
        resolveExit(130);
        return;
      }
      firstSignalAt = Date.now();
      out.info(`${signal}: stopping (workers, pollers, emulators, DynamoDB Local)…`);
      stack.stop().then(
        () => {
          out.info("stopped");
          resolveExit(0);
        },
        (error: unknown) => {
          out.error(`stopped with errors: ${error instanceof Error ? error.message : String(error)}`);
          resolveExit(1);
        },
      );
    };
    process.on("SIGINT", () => shutdown("SIGINT"));
    process.on("SIGTERM", () => shutdown("SIGTERM"));
  });
};

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof LocalStackError) {
      process.stderr.write(`npm start: ${error.message}\n`);
    } else {
      process.stderr.write(
        `npm start failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
  },
);
