// The whole backbone on 127.0.0.1, in one process: DynamoDB Local and fauxqs provisioned from
// lib/resources.ts, the built function bundles run as Lambda-like workers with the env CDK gives them, an
// HTTP API front door for the webhook, SQS event source mappings for the consumers, the closer's rate
// schedule, and either the Twilio emulator or real Twilio. `npm start` and the e2e tests both use it.
import { join, resolve } from "node:path";
import { GetQueueAttributesCommand, SetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyEventV2, SQSEvent } from "aws-lambda";
import { EnvNames } from "../config/env.ts";
import { functionEnv } from "../function-env.ts";
import { type FunctionName, Functions, functionNames, queueNames, WebhookRoutes } from "../resources.ts";
import { type StackConsole, silentConsole } from "./console.ts";
import { type DynamoDbLocal, startDynamoDbLocal } from "./dynamodb-local.ts";
import { PortInUseError, StackConfigError } from "./errors.ts";
import { type BatchReport, type EventSource, startEventSource } from "./event-source.ts";
import { patchFauxqsFifoReceive } from "./fauxqs-fifo.ts";
import {
  type FrontDoor,
  type LocalRequest,
  type LocalResponse,
  type Route,
  startFrontDoor,
} from "./front-door.ts";
import { createFunctionRuntime, type FunctionRuntime, type Invocation } from "./lambda-runner.ts";
import { localClients, type ProvisionedResources, provision } from "./provision.ts";
import { type Schedule, ScheduledEventInput, startRateSchedule } from "./scheduler.ts";
import { LocalAccountId, type SqsLocal, startSqsLocal } from "./sqs-local.ts";
import { removeStackFile, type StackInfo, writeStackFile } from "./stack-file.ts";
import { startTwilioEmulator, type TwilioEmulator } from "./twilio-emulator/server.ts";

/** Fake credentials of the emulated Twilio account; the same token signs local webhooks. */

/** Local-only hooks that model Twilio's carrier-level SMS opt-out list in the emulator. */
const twilioConsentRoutes: ReadonlyMap<string, "opt-out" | "opt-in"> = new Map([
  ["/_local/twilio/opt-out", "opt-out"],
  ["/_local/twilio/opt-in", "opt-in"],
]);

export const EmulatedTwilioAccount = {
  accountSid: "AC00000000000000000000000000000000",
  authToken: "local-auth-token",
  /** The number customers text; the emulator owns it. */
  phoneNumber: "+15005550006",
} as const;

export type TwilioSettings =
  | {
      readonly mode: "emulator";
      /** 0 (default) picks a free port. */
      readonly port?: number;
      /** Variable that sets `port`, named in the "port in use" message. */
      readonly portVariable?: string;
    }
  | {
      readonly mode: "real";
      readonly accountSid: string;
      /** Signs webhooks, so the webhook function needs it even when the workers use an API key. */
      readonly authToken: string;
      readonly apiKeySid?: string;
      readonly apiKeySecret?: string;
    };

/** Per-function knobs, for tests: plug in a fixture bundle, shorten a timeout, shape a mapping. */
export type FunctionOverride = {
  /** Directory holding the `index.mjs` to run instead of `<functionsDir>/<name>`. */
  readonly bundleDir?: string;
  readonly timeoutSeconds?: number;
  readonly batchSize?: number;
  readonly batchWindowSeconds?: number;
  readonly maxConcurrency?: number;
  /** Execution environments kept for the function (default: its mapping's maxConcurrency; 4 for HTTP). */
  readonly maxEnvironments?: number;
};

export type LocalStackOptions = {
  /** Front door port; 0 picks a free one. Default 3000. */
  readonly port?: number;
  /** Variable that sets `port`, named in the "port in use" message. */
  readonly portVariable?: string;
  /** Origin Twilio signs against (a tunnel); default the front door's own URL. */
  readonly publicWebhookBaseUrl?: string;
  /**
   * Deployer settings by variable name (`TENANT_CONFIG`, `CLOSER_IDLE_MINUTES`, …), handed out exactly as
   * CDK's `functionSettings`/`tenantConfig` context is: each function gets the names it reads.
   */
  readonly settings?: Readonly<Record<string, string>>;
  /** Default: the emulator on a free port. */
  readonly twilio?: TwilioSettings;
  /** Where the built bundles are; default `dist/functions`. */
  readonly functionsDir?: string;
  /**
   * Settles when the bundles are in place (e.g. a build running alongside); the stack starts the
   * emulators meanwhile and waits for it only before loading functions. A rejection aborts the start.
   */
  readonly functionsReady?: Promise<unknown>;
  readonly functions?: Partial<Record<FunctionName, FunctionOverride>>;
  /**
   * Sets VisibilityTimeout on every work queue after provisioning (default: the CDK value, 6 × the
   * consumer's timeout). Failed records come back after it, so retry → DLQ takes seconds, not minutes.
   */
  readonly visibilityTimeoutSeconds?: number;
  /** Start the rate schedules (default true). */
  readonly schedules?: boolean;
  /** Run every scheduled function once as soon as the stack is up. */
  readonly scheduleNow?: boolean;
  /** HTTP API's integration timeout (30 s); tests may shorten it. */
  readonly integrationTimeoutSeconds?: number;
  /** Write this stack file once up and remove it on stop; default none (the CLI passes `.local/stack.json`). */
  readonly stackFile?: string;
  readonly console?: StackConsole;
  /** How often queue depths are checked (printed only when they change); 0 turns it off. Default 2000. */
  readonly queueDepthIntervalMs?: number;
  readonly region?: string;
  /**
   * Called once per AWS emulator when the emulators are up, before anything is provisioned; the stack
   * then uses the endpoint it returns everywhere (provisioning, its own clients, the event source
   * pollers, the functions' `AWS_ENDPOINT_URL_*`, queue URLs, the stack file). Lets a test put a proxy
   * it can cut in front of an emulator. The caller stops what it started, after `stop()`. Default:
   * identity.
   */
  readonly wrapEndpoint?: (service: AwsService, endpoint: string) => Promise<string>;
};

/** The emulated AWS services, as `wrapEndpoint` names them. */
export type AwsService = "dynamodb" | "sqs";

export type InvocationRecord = {
  readonly functionName: FunctionName;
  readonly trigger: "http" | "sqs" | "schedule";
  readonly event: unknown;
  readonly invocation: Invocation;
  /** SQS: what the mapping did with each record. */
  readonly batch?: BatchReport;
  /** HTTP: the status the front door answered. */
  readonly status?: number;
};

export type LocalStack = {
  readonly apiUrl: string;
  readonly stackInfo: StackInfo;
  readonly resources: ProvisionedResources;
  /** The emulator, when the stack uses one (its `url` speaks Twilio's REST API). */
  readonly twilioEmulator: TwilioEmulator | undefined;
  /** Every invocation so far, oldest first (the most recent 5000). */
  readonly invocations: readonly InvocationRecord[];
  /** Resolves with the first invocation (past or future) matching `predicate`. */
  waitForInvocation(
    predicate: (record: InvocationRecord) => boolean,
    timeoutMs?: number,
  ): Promise<InvocationRecord>;
  /**
   * Enables or disables a queue consumer's event source mapping (like its `Enabled` flag): while
   * disabled, messages wait in the queue. Resolves once in effect.
   */
  setEventSourceEnabled(name: FunctionName, enabled: boolean): Promise<void>;
  /** Runs a scheduled function now with `input` (`{}` or `{ dryRun: true }`), as Scheduler would. */
  runSchedule(name: FunctionName, input?: Record<string, unknown>): Promise<Invocation>;
  /** Stops everything this stack started; safe to call twice. */
  stop(): Promise<void>;
};

const Phases = ["intake", "compute", "emulators", "files"] as const;
type Phase = (typeof Phases)[number];

const defaults = {
  port: 3000,
  region: "us-east-1",
  functionsDir: join("dist", "functions"),
  queueDepthIntervalMs: 2000,
  httpEnvironments: 4,
  scheduleEnvironments: 1,
  invocationLogSize: 5000,
} as const;

/** Physical names as `local-<table>`: each stack has its own in-memory emulators, so nothing can clash. */
const resourcePrefix = "local";

type QueueTrigger = Extract<(typeof Functions)[FunctionName]["trigger"], { kind: "queue" }>;

const queueTrigger = (name: FunctionName): QueueTrigger | undefined => {
  const trigger = Functions[name].trigger;
  return trigger.kind === "queue" ? trigger : undefined;
};

const rateMinutes = (name: FunctionName): number | undefined => {
  const trigger = Functions[name].trigger;
  return trigger.kind === "schedule" ? trigger.rateMinutes : undefined;
};

/** The Twilio part of every function's env: what the deployed secret holds, as variables. */
const twilioEnv = (settings: TwilioSettings, emulatorUrl: string | undefined): Record<string, string> => {
  if (settings.mode === "emulator") {
    return {
      [EnvNames.twilioAccountSid]: EmulatedTwilioAccount.accountSid,
      [EnvNames.twilioAuthToken]: EmulatedTwilioAccount.authToken,
      ...(emulatorUrl === undefined ? {} : { [EnvNames.twilioApiBaseUrl]: emulatorUrl }),
    };
  }
  return {
    [EnvNames.twilioAccountSid]: settings.accountSid,
    [EnvNames.twilioAuthToken]: settings.authToken,
    ...(settings.apiKeySid === undefined || settings.apiKeySecret === undefined
      ? {}
      : {
          [EnvNames.twilioApiKeySid]: settings.apiKeySid,
          [EnvNames.twilioApiKeySecret]: settings.apiKeySecret,
        }),
  };
};

/** What Lambda itself sets in every function's environment, plus the standard AWS endpoint overrides. */
const lambdaEnv = (
  name: FunctionName,
  bundleDir: string,
  region: string,
  endpoints: { dynamodb: string; sqs: string },
): Record<string, string> => ({
  AWS_REGION: region,
  AWS_DEFAULT_REGION: region,
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
  AWS_LAMBDA_FUNCTION_NAME: name,
  AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(Functions[name].memoryMb),
  AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
  AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
  AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
  LAMBDA_TASK_ROOT: resolve(bundleDir),
  _HANDLER: "index.handler",
  AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
  AWS_ENDPOINT_URL_SQS: endpoints.sqs,
});

const checkOptions = (options: LocalStackOptions): void => {
  const visibility = options.visibilityTimeoutSeconds;
  if (visibility !== undefined && (!Number.isInteger(visibility) || visibility < 0 || visibility > 43_200)) {
    throw new StackConfigError(`visibilityTimeoutSeconds must be a whole number 0–43200, got ${visibility}`);
  }
  const base = options.publicWebhookBaseUrl;
  if (base !== undefined) {
    let url: URL;
    try {
      url = new URL(base);
    } catch (error) {
      throw new StackConfigError(`PUBLIC_WEBHOOK_BASE_URL must be an absolute URL, got "${base}"`, {
        cause: error,
      });
    }
    if (url.search || url.hash)
      throw new StackConfigError("PUBLIC_WEBHOOK_BASE_URL must not have a query or fragment");
  }
};

/** Starts every part, stopping what already started if a later part fails. */
export const startLocalStack = async (options: LocalStackOptions = {}): Promise<LocalStack> => {
  checkOptions(options);
  const out = options.console ?? silentConsole;
  const region = options.region ?? defaults.region;
  const twilioSettings: TwilioSettings = options.twilio ?? { mode: "emulator" };
  const functionsDir = options.functionsDir ?? defaults.functionsDir;
  // Shutdown runs phase by phase, in reverse start order within a phase: first nothing new may come in
  // (front door, schedules), then the compute stops (pollers and workers together, so a batch in flight
  // ends with its worker instead of holding shutdown up for a whole function timeout), then the
  // emulators, and the stack file goes last.
  const cleanups: { readonly phase: Phase; readonly run: () => unknown }[] = [];
  const onStop = (phase: Phase, run: () => unknown): void => {
    cleanups.push({ phase, run });
  };
  const runtimes = new Map<FunctionName, FunctionRuntime>();
  const invocations: InvocationRecord[] = [];
  const listeners = new Set<(record: InvocationRecord) => void>();
  let stopping: Promise<void> | undefined;

  const record = (entry: InvocationRecord): void => {
    invocations.push(entry);
    if (invocations.length > defaults.invocationLogSize) invocations.shift();
    for (const listener of listeners) listener(entry);
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const errors: unknown[] = [];
      const all = cleanups.splice(0).reverse();
      for (const phase of Phases) {
        const results = await Promise.allSettled(
          all.filter((cleanup) => cleanup.phase === phase).map(async (cleanup) => cleanup.run()),
        );
        for (const result of results) if (result.status === "rejected") errors.push(result.reason);
      }
      if (errors.length > 0) throw new AggregateError(errors, "the local stack did not stop cleanly");
    })();
    return stopping;
  };

  let markReady: () => void = () => undefined;
  let markFailed: (error: unknown) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  ready.catch(() => undefined);

  const invokeHttp = async (name: FunctionName, event: APIGatewayProxyEventV2): Promise<Invocation> => {
    const runtime = runtimes.get(name);
    if (runtime === undefined) throw new StackConfigError(`function ${name} is not part of the stack`);
    return runtime.invoke(event);
  };

  const runSchedule = async (
    name: FunctionName,
    input: Record<string, unknown> = { ...ScheduledEventInput },
  ) => {
    const runtime = runtimes.get(name);
    if (runtime === undefined) throw new StackConfigError(`function ${name} is not part of the stack`);
    const invocation = await runtime.invoke(input);
    out.scheduled(name, input, invocation);
    record({ functionName: name, trigger: "schedule", event: input, invocation });
    return invocation;
  };

  const routes: Route[] = functionNames
    .filter((name) => Functions[name].trigger.kind === "http")
    .flatMap((name) =>
      Object.keys(WebhookRoutes).map((path) => ({
        // CDK adds each webhook path as a POST route, so HTTP API names the route `POST <path>` and
        // answers 404 to any other method or path.
        routeKey: `POST ${path}`,
        functionName: name,
        invoke: (event: APIGatewayProxyEventV2) => invokeHttp(name, event),
      })),
    );

  try {
    // The port first: a second `npm start` should fail in milliseconds, before Java starts.
    const frontDoor: FrontDoor = await startFrontDoor({
      port: options.port ?? defaults.port,
      host: "127.0.0.1",
      portVariable: options.portVariable ?? "PORT",
      accountId: LocalAccountId,
      apiId: "local",
      routes,
      ready,
      ...(options.integrationTimeoutSeconds === undefined
        ? {}
        : { integrationTimeoutSeconds: options.integrationTimeoutSeconds }),
      local: (request) => localRoute(request),
      onRequest: (report) => {
        out.request(report);
        if (report.route !== undefined && report.invocation !== undefined) {
          const name = functionNames.find((candidate) => candidate === report.route?.functionName);
          if (name !== undefined) {
            record({
              functionName: name,
              trigger: "http",
              event: report.event,
              invocation: report.invocation,
              status: report.status,
            });
          }
        }
      },
    });
    onStop("intake", () => frontDoor.stop());
    const publicWebhookBaseUrl = (options.publicWebhookBaseUrl ?? frontDoor.url).replace(/\/+$/, "");

    const fifoPatch = await patchFauxqsFifoReceive();
    if (fifoPatch !== undefined) out.warn(fifoPatch);

    const started = await Promise.allSettled([
      startDynamoDbLocal(),
      startSqsLocal(),
      twilioSettings.mode === "emulator"
        ? startTwilioEmulator({
            port: twilioSettings.port ?? 0,
            accountSid: EmulatedTwilioAccount.accountSid,
            authToken: EmulatedTwilioAccount.authToken,
            phoneNumbers: [EmulatedTwilioAccount.phoneNumber],
            onRequest: (entry) => out.twilio(entry),
          }).catch((error: unknown) => {
            if (isAddressInUse(error)) {
              const variable = twilioSettings.portVariable ?? "the emulator port";
              throw new PortInUseError(twilioSettings.port ?? 0, variable, { cause: error });
            }
            throw error;
          })
        : Promise.resolve(undefined),
    ]);
    const [dynamoResult, sqsResult, emulatorResult] = started;
    if (dynamoResult.status === "fulfilled") onStop("emulators", () => dynamoResult.value.stop());
    if (sqsResult.status === "fulfilled") onStop("emulators", () => sqsResult.value.stop());
    if (emulatorResult.status === "fulfilled" && emulatorResult.value !== undefined) {
      const emulator = emulatorResult.value;
      onStop("emulators", () => emulator.stop());
    }
    for (const result of started) if (result.status === "rejected") throw result.reason;
    const dynamodb: DynamoDbLocal = settledValue(dynamoResult);
    const sqs: SqsLocal = settledValue(sqsResult);
    const emulator: TwilioEmulator | undefined = settledValue(emulatorResult);

    const [dynamodbEndpoint, sqsEndpoint] = await Promise.all([
      wrappedEndpoint(options, "dynamodb", dynamodb.endpoint),
      wrappedEndpoint(options, "sqs", sqs.endpoint),
    ]);
    const endpoints = { dynamodb: dynamodbEndpoint, sqs: sqsEndpoint };
    // Built on the (possibly wrapped) endpoint rather than taken from fauxqs, so that every queue URL
    // the stack hands out routes through whatever `wrapEndpoint` put in front of it.
    const queueUrl = (name: string): string => `${sqsEndpoint}/${LocalAccountId}/${name}`;
    const resources = await provision(endpoints, queueUrl, resourcePrefix);
    const clients = localClients(endpoints, region);
    onStop("emulators", () => {
      clients.dynamodb.destroy();
      clients.sqs.destroy();
    });
    if (options.visibilityTimeoutSeconds !== undefined) {
      warnShortVisibility(options, out);
      for (const queue of queueNames) {
        await clients.sqs.send(
          new SetQueueAttributesCommand({
            QueueUrl: resources.queueUrls[queue],
            Attributes: { VisibilityTimeout: String(options.visibilityTimeoutSeconds) },
          }),
        );
      }
    }

    await options.functionsReady;
    const functionEnvs = new Map<FunctionName, Record<string, string>>();
    for (const name of functionNames) {
      const override = options.functions?.[name] ?? {};
      const bundleDir = override.bundleDir ?? join(functionsDir, name);
      // CDK's env with the secret reference swapped for what the secret holds: there is no Secrets Manager
      // locally, and every config parser accepts the same values as variables.
      const { [EnvNames.twilioSecretArn]: _secretArn, ...deployed } = functionEnv(name, {
        tableNames: resources.tableNames,
        queueUrls: resources.queueUrls,
        twilioSecretArn: "arn:aws:secretsmanager:local:000000000000:secret:unused",
        publicWebhookBaseUrl,
        ...(options.settings === undefined ? {} : { settings: options.settings }),
      });
      const env = {
        ...lambdaEnv(name, bundleDir, region, endpoints),
        ...deployed,
        ...twilioEnv(twilioSettings, emulator?.url),
      };
      functionEnvs.set(name, env);
      const trigger = Functions[name].trigger;
      const maxEnvironments =
        override.maxEnvironments ??
        (trigger.kind === "queue"
          ? (override.maxConcurrency ?? trigger.maxConcurrency)
          : trigger.kind === "http"
            ? defaults.httpEnvironments
            : defaults.scheduleEnvironments);
      const runtime = createFunctionRuntime({
        name,
        bundleDir,
        env,
        timeoutSeconds: override.timeoutSeconds ?? Functions[name].timeoutSeconds,
        memoryMb: Functions[name].memoryMb,
        maxEnvironments,
        region,
        accountId: LocalAccountId,
        missingBundleHint: `write ${Functions[name].entry} and run npm run build`,
        onLog: (line) => out.functionLog(name, line),
      });
      runtimes.set(name, runtime);
      onStop("compute", () => runtime.stop());
    }

    const eventSources = new Map<FunctionName, EventSource>();
    for (const name of functionNames) {
      const trigger = queueTrigger(name);
      const runtime = runtimes.get(name);
      if (trigger === undefined || runtime === undefined) continue;
      if (!runtime.available()) {
        out.warn(
          `${name}: no bundle at ${runtime.bundlePath} (${Functions[name].entry} not built) — the ${trigger.queue} queue is not consumed`,
        );
        continue;
      }
      const override = options.functions?.[name] ?? {};
      const queue = trigger.queue;
      const source = startEventSource({
        sqs: clients.sqs,
        queueUrl: resources.queueUrls[queue],
        queueArn: resources.queueArns[queue],
        region,
        batchSize: override.batchSize ?? trigger.batchSize,
        batchWindowSeconds: override.batchWindowSeconds ?? trigger.batchWindowSeconds,
        maxConcurrency: override.maxConcurrency ?? trigger.maxConcurrency,
        invoke: (event: SQSEvent) => runtime.invoke(event),
        onBatch: (report) => {
          out.batch(name, queue, report);
          record({
            functionName: name,
            trigger: "sqs",
            event: { Records: report.records },
            invocation: report.invocation,
            batch: report,
          });
        },
        onError: (error) => out.error(`${name} event source on ${queue}: ${describe(error)}`),
      });
      eventSources.set(name, source);
    }
    for (const source of eventSources.values()) onStop("compute", () => source.stop());

    const schedules: Schedule[] = [];
    if (options.schedules !== false) {
      for (const name of functionNames) {
        const rate = rateMinutes(name);
        const runtime = runtimes.get(name);
        if (rate === undefined || runtime === undefined) continue;
        if (!runtime.available()) {
          out.warn(
            `${name}: no bundle at ${runtime.bundlePath} (${Functions[name].entry} not built) — not scheduled`,
          );
          continue;
        }
        schedules.push(
          startRateSchedule({
            rateMinutes: rate,
            run: (input) => runSchedule(name, input),
            onError: (error) => out.error(`${name} schedule: ${describe(error)}`),
          }),
        );
      }
    }
    onStop("intake", () => {
      for (const schedule of schedules) schedule.stop();
    });

    if ((options.queueDepthIntervalMs ?? defaults.queueDepthIntervalMs) > 0) {
      const monitor = watchQueueDepths(
        clients.sqs,
        resources,
        options.queueDepthIntervalMs ?? defaults.queueDepthIntervalMs,
        out,
      );
      onStop("intake", () => monitor.stop());
    }

    const stackInfo: StackInfo = {
      api: frontDoor.url,
      publicWebhookBaseUrl,
      twilio: {
        accountSid:
          twilioSettings.mode === "emulator" ? EmulatedTwilioAccount.accountSid : twilioSettings.accountSid,
        authToken:
          twilioSettings.mode === "emulator" ? EmulatedTwilioAccount.authToken : twilioSettings.authToken,
        apiBaseUrl: emulator?.url ?? null,
        phoneNumbers: emulator === undefined ? [] : [EmulatedTwilioAccount.phoneNumber],
      },
      aws: {
        region,
        dynamodbEndpoint: endpoints.dynamodb,
        sqsEndpoint: endpoints.sqs,
        tables: resources.tableNames,
        queues: resources.queueUrls,
        deadLetterQueues: resources.deadLetterQueueUrls,
      },
      functions: Object.fromEntries(
        functionNames.map((name) => [
          name,
          {
            env: functionEnvs.get(name) ?? {},
            bundle: resolve(runtimes.get(name)?.bundlePath ?? ""),
            available: runtimes.get(name)?.available() ?? false,
          },
        ]),
      ),
    };
    const stackFile = options.stackFile;
    if (stackFile !== undefined) {
      await writeStackFile(stackFile, stackInfo);
      onStop("files", () => removeStackFile(stackFile));
    }

    markReady();

    async function localRoute(request: LocalRequest): Promise<LocalResponse | undefined> {
      const schedule = /^\/_local\/schedule\/([a-z]+)$/.exec(request.rawPath);
      if (schedule !== null) {
        const name = functionNames.find((candidate) => candidate === schedule[1]);
        if (name === undefined || rateMinutes(name) === undefined) {
          return { status: 404, body: { message: `no scheduled function ${schedule[1]}` } };
        }
        if (request.method !== "POST") return { status: 405, body: { message: "use POST" } };
        const dryRun = request.searchParams.get("dryRun");
        const input = dryRun === "true" || dryRun === "1" ? { dryRun: true } : { ...ScheduledEventInput };
        const invocation = await runSchedule(name, input);
        const { result } = invocation;
        return result.status === "ok"
          ? { status: 200, body: result.payload }
          : {
              status: result.error.errorType === "ResourceNotFoundException" ? 404 : 502,
              body: result.error,
            };
      }
      const consentChange = twilioConsentRoutes.get(request.rawPath);
      if (consentChange !== undefined && request.method === "POST") {
        const address = new URLSearchParams(request.body.toString("utf8")).get("Address");
        if (emulator === undefined) return { status: 409, body: { message: "the stack uses real Twilio" } };
        if (!address) return { status: 400, body: { message: "Address is required" } };
        // Twilio's own SMS opt-out handling: after STOP sends fail with 21610, after START they flow again.
        if (consentChange === "opt-out") emulator.optOut(address);
        else emulator.optIn(address);
        return { status: 200, body: { [consentChange === "opt-out" ? "optedOut" : "optedIn"]: address } };
      }
      return undefined;
    }

    if (options.scheduleNow === true) {
      for (const name of functionNames) {
        if (rateMinutes(name) !== undefined && runtimes.get(name)?.available()) await runSchedule(name);
      }
    }

    return {
      apiUrl: frontDoor.url,
      stackInfo,
      resources,
      twilioEmulator: emulator,
      invocations,
      waitForInvocation: (predicate, timeoutMs = 10_000) =>
        new Promise<InvocationRecord>((resolvePromise, reject) => {
          const seen = invocations.find(predicate);
          if (seen !== undefined) {
            resolvePromise(seen);
            return;
          }
          const timer = setTimeout(() => {
            listeners.delete(listener);
            reject(new Error(`no matching invocation within ${timeoutMs} ms`));
          }, timeoutMs);
          const listener = (entry: InvocationRecord): void => {
            if (!predicate(entry)) return;
            clearTimeout(timer);
            listeners.delete(listener);
            resolvePromise(entry);
          };
          listeners.add(listener);
        }),
      setEventSourceEnabled: async (name, enabled) => {
        const source = eventSources.get(name);
        if (source === undefined) throw new StackConfigError(`${name} has no running event source mapping`);
        await source.setEnabled(enabled);
      },
      runSchedule,
      stop,
    };
  } catch (error) {
    markFailed(error);
    await stop().catch(() => undefined);
    throw error;
  }
};

/** Asks `options.wrapEndpoint` for the endpoint to use instead of the emulator's own. */
const wrappedEndpoint = async (
  options: LocalStackOptions,
  service: AwsService,
  endpoint: string,
): Promise<string> => {
  if (options.wrapEndpoint === undefined) return endpoint;
  const wrapped = await options.wrapEndpoint(service, endpoint);
  let url: URL;
  try {
    url = new URL(wrapped);
  } catch (error) {
    throw new StackConfigError(`wrapEndpoint(${service}) must return an absolute URL, got "${wrapped}"`, {
      cause: error,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new StackConfigError(`wrapEndpoint(${service}) must return an http(s) URL, got "${wrapped}"`);
  }
  return wrapped.replace(/\/+$/, "");
};

function settledValue<T>(result: PromiseSettledResult<T>): T {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

/** Lambda refuses a mapping whose queue hides a message for less than the function may run. */
const warnShortVisibility = (options: LocalStackOptions, out: StackConsole): void => {
  const visibility = options.visibilityTimeoutSeconds ?? 0;
  for (const name of functionNames) {
    const trigger = queueTrigger(name);
    if (trigger === undefined) continue;
    const override = options.functions?.[name];
    const timeout = override?.timeoutSeconds ?? Functions[name].timeoutSeconds;
    const window = override?.batchWindowSeconds ?? trigger.batchWindowSeconds;
    if (visibility < timeout + window) {
      out.warn(
        `visibility timeout ${visibility} s < ${name}'s timeout ${timeout} s${window > 0 ? ` + ${window} s window` : ""}: AWS would reject this mapping, and a batch that outlasts it can be delivered again while it runs`,
      );
    }
  }
};

const isAddressInUse = (error: unknown): boolean =>
  error instanceof Error && "code" in error && error.code === "EADDRINUSE";

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Polls the work queues and their DLQs; reports only when a depth changed. */
const watchQueueDepths = (
  sqs: SQSClient,
  resources: ProvisionedResources,
  intervalMs: number,
  out: StackConsole,
): { stop(): void } => {
  const queues = queueNames.flatMap((queue) => [
    { name: queue, url: resources.queueUrls[queue] },
    { name: `${queue}-dlq`, url: resources.deadLetterQueueUrls[queue] },
  ]);
  let last = "";
  let busy = false;
  const check = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const depths = await Promise.all(
        queues.map(async (queue) => {
          const { Attributes = {} } = await sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: queue.url,
              AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            }),
          );
          return {
            name: queue.name,
            visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
            inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
          };
        }),
      );
      const key = JSON.stringify(depths);
      if (key !== last) {
        last = key;
        out.queues(depths);
      }
    } catch {
      // The emulator is going away (shutdown) or briefly busy; the next tick reports.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  void check();
  return { stop: () => clearInterval(timer) };
};
