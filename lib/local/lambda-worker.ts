// One Lambda execution environment, run as a worker thread by lambda-runner.ts. The worker's process.env
// is its own copy (the Worker `env` option), so the bundle's module scope — config parsing, SDK clients —
// sees only this function's variables, as in a separate Lambda. It imports the built bundle once (the init
// phase), then runs the invocations the runner posts on its MessagePort one at a time, with a Lambda
// context and the Node.js runtime's text log format (`time\trequestId\tLEVEL\tmessage`).

import { pathToFileURL } from "node:url";
import { format } from "node:util";
import { MessagePort, workerData } from "node:worker_threads";
import {
  type EnvironmentConfig,
  type EnvironmentMessage,
  type InvokeMessage,
  type LambdaError,
  toLambdaError,
} from "./lambda-protocol.ts";

type Handler = (event: unknown, context: object) => unknown;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null;

const readWorkerData = (value: unknown): { config: EnvironmentConfig; port: MessagePort } => {
  if (!isRecord(value) || !isRecord(value.config) || !(value.port instanceof MessagePort)) {
    throw new Error("lambda-worker started without its config and port");
  }
  const { config, port } = value;
  const text = (key: string): string => {
    const field = config[key];
    if (typeof field !== "string") throw new Error(`lambda-worker config.${key} missing`);
    return field;
  };
  const memoryMb = config.memoryMb;
  if (typeof memoryMb !== "number") throw new Error("lambda-worker config.memoryMb missing");
  return {
    config: {
      bundlePath: text("bundlePath"),
      functionName: text("functionName"),
      memoryMb,
      region: text("region"),
      accountId: text("accountId"),
      logStreamName: text("logStreamName"),
    },
    port,
  };
};

const { config, port } = readWorkerData(workerData);
const post = (message: EnvironmentMessage): void => port.postMessage(message);

// Lambda honours NODE_OPTIONS; a worker thread cannot take process-wide flags, so the one CDK sets is
// applied here by hand.
if ((process.env.NODE_OPTIONS ?? "").includes("--enable-source-maps")) process.setSourceMapsEnabled(true);

let currentRequestId: string | undefined;
const levels = {
  log: "INFO",
  info: "INFO",
  warn: "WARN",
  error: "ERROR",
  debug: "DEBUG",
  trace: "TRACE",
} as const;
for (const [method, level] of Object.entries(levels)) {
  Reflect.set(console, method, (...args: unknown[]) => {
    const message = format(...args).replaceAll("\n", "\r");
    process.stdout.write(
      `${new Date().toISOString()}\t${currentRequestId ?? "undefined"}\t${level}\t${message}\n`,
    );
  });
}

const initStarted = performance.now();
let handler: Handler | undefined;
try {
  const module: Record<string, unknown> = await import(pathToFileURL(config.bundlePath).href);
  const exported = module.handler;
  if (typeof exported !== "function") {
    const error: LambdaError = {
      errorType: "Runtime.HandlerNotFound",
      errorMessage: "index.handler is undefined or not exported",
    };
    post({ type: "init-error", error });
  } else {
    handler = (event, context) => Reflect.apply(exported, undefined, [event, context]);
    post({ type: "ready", initMs: performance.now() - initStarted });
  }
} catch (error) {
  post({ type: "init-error", error: toLambdaError(error, "Runtime.ImportModuleError") });
}

const invokedFunctionArn = `arn:aws:lambda:${config.region}:${config.accountId}:function:${config.functionName}`;

const contextFor = (message: InvokeMessage) => ({
  callbackWaitsForEmptyEventLoop: true,
  functionName: config.functionName,
  functionVersion: "$LATEST",
  invokedFunctionArn,
  memoryLimitInMB: String(config.memoryMb),
  awsRequestId: message.requestId,
  logGroupName: `/aws/lambda/${config.functionName}`,
  logStreamName: config.logStreamName,
  getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
});

const invoke = async (message: InvokeMessage): Promise<void> => {
  if (handler === undefined) return;
  currentRequestId = message.requestId;
  process.env._X_AMZN_TRACE_ID = message.traceId;
  try {
    const result = await handler(JSON.parse(message.payload), contextFor(message));
    // Lambda serializes the result with JSON.stringify; `undefined` arrives as null.
    post({ type: "result", id: message.id, payload: JSON.stringify(result) ?? "null" });
  } catch (error) {
    const lambdaError = toLambdaError(error);
    console.error(`Invoke Error \t${JSON.stringify(lambdaError)}`);
    post({ type: "error", id: message.id, error: lambdaError });
  } finally {
    currentRequestId = undefined;
  }
};

const isInvokeMessage = (value: unknown): value is InvokeMessage =>
  isRecord(value) &&
  value.type === "invoke" &&
  typeof value.id === "number" &&
  typeof value.requestId === "string" &&
  typeof value.payload === "string" &&
  typeof value.deadline === "number";

// The runner never sends a second invocation before the first answered (one execution environment runs
// one invocation at a time); the chain keeps that true even if it did.
let queue: Promise<void> = Promise.resolve();
port.on("message", (value: unknown) => {
  if (!isInvokeMessage(value)) return;
  queue = queue.then(() => invoke(value));
});
