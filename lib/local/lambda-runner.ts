// Runs a built function bundle (dist/functions/<name>/index.mjs, the artifact CDK deploys) the way Lambda
// does. Each execution environment is a worker thread with its own process.env and its own module
// instance; it runs one invocation at a time. A function gets up to `maxEnvironments` of them, created on
// demand (each creation is a cold start) and reused while warm, newest first. The configured timeout is
// enforced from outside: on expiry the worker is terminated — the environment is gone, as in Lambda — and
// the invocation fails with "Task timed out after N.00 seconds"; the next invocation starts a fresh one.
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import {
  type EnvironmentConfig,
  type InvokeMessage,
  type LambdaError,
  parseEnvironmentMessage,
} from "./lambda-protocol.ts";

export type { LambdaError } from "./lambda-protocol.ts";

export type InvokeResult =
  | { readonly status: "ok"; readonly payload: unknown }
  | { readonly status: "error"; readonly error: LambdaError }
  | { readonly status: "timeout"; readonly error: LambdaError };

export type Invocation = {
  readonly requestId: string;
  readonly functionName: string;
  readonly startedAt: number;
  readonly durationMs: number;
  /** Set when this invocation started a new execution environment (a cold start). */
  readonly initDurationMs: number | undefined;
  readonly result: InvokeResult;
};

export type FunctionRuntimeOptions = {
  readonly name: string;
  /** Directory holding `index.mjs` (and its chunks). */
  readonly bundleDir: string;
  /** The complete environment of the function: what CDK sets plus what Lambda itself sets. */
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly maxEnvironments: number;
  readonly region: string;
  readonly accountId: string;
  /** Shown when the bundle does not exist, e.g. which handler to write and how to build it. */
  readonly missingBundleHint?: string;
  /** Every line the function writes to stdout/stderr. */
  readonly onLog?: (line: string) => void;
};

export type FunctionRuntime = {
  readonly name: string;
  readonly bundlePath: string;
  /** Whether the bundle exists right now (checked again whenever an environment starts). */
  available(): boolean;
  invoke(event: unknown): Promise<Invocation>;
  /** Terminates every environment; invocations in flight fail. */
  stop(): Promise<void>;
};

/** Lambda's init phase limit for on-demand functions. */
const initTimeoutMs = 10_000;

const workerScript = new URL("./lambda-worker.ts", import.meta.url);

export const traceId = (): string =>
  `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString("hex")};Sampled=0`;

const logStreamName = (): string => {
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "/");
  return `${day}/[$LATEST]${randomBytes(16).toString("hex")}`;
};

const timedOut = (seconds: number): LambdaError => ({
  errorType: "Sandbox.Timedout",
  errorMessage: `Task timed out after ${seconds.toFixed(2)} seconds`,
});

type InitOutcome =
  | { readonly ok: true; readonly initMs: number }
  | { readonly ok: false; readonly error: LambdaError };

type Environment = {
  readonly init: Promise<InitOutcome>;
  readonly alive: () => boolean;
  run(message: InvokeMessage, timeoutMs: number, timeoutSeconds: number): Promise<InvokeResult>;
  kill(): Promise<void>;
};

const startEnvironment = (options: FunctionRuntimeOptions, bundlePath: string): Environment => {
  const createdAt = performance.now();
  const channel = new MessageChannel();
  const config: EnvironmentConfig = {
    bundlePath,
    functionName: options.name,
    memoryMb: options.memoryMb,
    region: options.region,
    accountId: options.accountId,
    logStreamName: logStreamName(),
  };
  const worker = new Worker(workerScript, {
    env: { ...options.env },
    workerData: { config, port: channel.port2 },
    transferList: [channel.port2],
    stdout: true,
    stderr: true,
    // The closest worker_threads gets to Lambda's memory setting: the heap may not outgrow it.
    resourceLimits: { maxOldGenerationSizeMb: options.memoryMb },
  });
  const port: MessagePort = channel.port1;
  for (const stream of [worker.stdout, worker.stderr]) {
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) =>
      options.onLog?.(line),
    );
  }

  let alive = true;
  let crash: LambdaError | undefined;
  const pending = new Map<number, (result: InvokeResult) => void>();
  let settleInit: (outcome: InitOutcome) => void = () => undefined;
  const init = new Promise<InitOutcome>((resolve) => {
    settleInit = resolve;
  });

  port.on("message", (value: unknown) => {
    const message = parseEnvironmentMessage(value);
    if (message === undefined) return;
    switch (message.type) {
      case "ready":
        // Init Duration covers starting the runtime (the thread) and importing the bundle.
        settleInit({ ok: true, initMs: performance.now() - createdAt });
        return;
      case "init-error":
        settleInit({ ok: false, error: message.error });
        return;
      case "result":
        pending.get(message.id)?.({ status: "ok", payload: JSON.parse(message.payload) });
        pending.delete(message.id);
        return;
      case "error":
        pending.get(message.id)?.({ status: "error", error: message.error });
        pending.delete(message.id);
        return;
    }
  });
  worker.on("error", (error) => {
    // An uncaught exception or unhandled rejection ends the runtime process in Lambda too.
    crash = {
      errorType: error.name === "Error" ? "Runtime.UnhandledError" : error.name,
      errorMessage: error.message,
      trace: (error.stack ?? "").split("\n"),
    };
  });
  worker.on("exit", (code) => {
    alive = false;
    port.close();
    const error: LambdaError = crash ?? {
      errorType: "Runtime.ExitError",
      errorMessage: `Runtime exited with error: exit status ${code}`,
    };
    settleInit({ ok: false, error });
    for (const resolve of pending.values()) resolve({ status: "error", error });
    pending.clear();
  });

  const kill = async (): Promise<void> => {
    if (!alive) return;
    alive = false;
    await worker.terminate();
  };

  return {
    init,
    alive: () => alive,
    kill,
    run: (message, timeoutMs, timeoutSeconds) =>
      new Promise<InvokeResult>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(message.id);
          resolve({ status: "timeout", error: timedOut(timeoutSeconds) });
          void kill();
        }, timeoutMs);
        pending.set(message.id, (result) => {
          clearTimeout(timer);
          resolve(result);
        });
        port.postMessage(message);
      }),
  };
};

export const createFunctionRuntime = (options: FunctionRuntimeOptions): FunctionRuntime => {
  const bundlePath = join(options.bundleDir, "index.mjs");
  const all = new Set<Environment>();
  const idle: Environment[] = [];
  const waiting: ((environment: Environment | undefined) => void)[] = [];
  let stopped = false;
  let nextId = 0;

  const missing = (): LambdaError => ({
    errorType: "ResourceNotFoundException",
    errorMessage: `Function not found: ${options.name} (${bundlePath} does not exist${options.missingBundleHint ? `; ${options.missingBundleHint}` : ""})`,
  });

  const acquire = (): Promise<{ environment: Environment; cold: boolean } | undefined> => {
    const warm = idle.pop();
    if (warm !== undefined) return Promise.resolve({ environment: warm, cold: false });
    if (all.size < options.maxEnvironments) {
      const environment = startEnvironment(options, bundlePath);
      all.add(environment);
      return Promise.resolve({ environment, cold: true });
    }
    return new Promise((resolve) => {
      waiting.push((environment) => resolve(environment && { environment, cold: false }));
    });
  };

  const release = (environment: Environment): void => {
    if (stopped) {
      void environment.kill();
      return;
    }
    if (!environment.alive()) all.delete(environment);
    const next = waiting.shift();
    if (next === undefined) {
      if (environment.alive()) idle.push(environment);
      return;
    }
    if (environment.alive()) {
      next(environment);
      return;
    }
    const fresh = startEnvironment(options, bundlePath);
    all.add(fresh);
    next(fresh);
  };

  const invoke = async (event: unknown): Promise<Invocation> => {
    const requestId = randomUUID();
    const startedAt = Date.now();
    const finish = (result: InvokeResult, initDurationMs?: number): Invocation => ({
      requestId,
      functionName: options.name,
      startedAt,
      durationMs: Date.now() - startedAt,
      initDurationMs,
      result,
    });
    if (stopped) {
      return finish({
        status: "error",
        error: { errorType: "ServiceException", errorMessage: "the local stack is stopping" },
      });
    }
    if (!existsSync(bundlePath) && idle.length === 0) return finish({ status: "error", error: missing() });
    const acquired = await acquire();
    if (acquired === undefined) {
      return finish({
        status: "error",
        error: { errorType: "ServiceException", errorMessage: "the local stack is stopping" },
      });
    }
    const { environment, cold } = acquired;
    try {
      let initDurationMs: number | undefined;
      if (cold) {
        const init = await Promise.race([
          environment.init,
          new Promise<InitOutcome>((resolve) =>
            setTimeout(
              () => resolve({ ok: false, error: timedOut(initTimeoutMs / 1000) }),
              initTimeoutMs,
            ).unref(),
          ),
        ]);
        if (!init.ok) {
          // Lambda runs init again on the next invocation; so does a fresh environment here.
          await environment.kill();
          return finish({ status: "error", error: init.error });
        }
        initDurationMs = Math.round(init.initMs);
      }
      const invokedAt = Date.now();
      const timeoutMs = options.timeoutSeconds * 1000;
      nextId += 1;
      const result = await environment.run(
        {
          type: "invoke",
          id: nextId,
          requestId,
          traceId: traceId(),
          payload: JSON.stringify(event) ?? "null",
          deadline: invokedAt + timeoutMs,
        },
        timeoutMs,
        options.timeoutSeconds,
      );
      return { ...finish(result, initDurationMs), durationMs: Date.now() - invokedAt };
    } finally {
      release(environment);
    }
  };

  return {
    name: options.name,
    bundlePath,
    available: () => existsSync(bundlePath),
    invoke,
    stop: async () => {
      stopped = true;
      for (const resolve of waiting.splice(0)) resolve(undefined);
      idle.length = 0;
      await Promise.all([...all].map((environment) => environment.kill()));
      all.clear();
    },
  };
};
