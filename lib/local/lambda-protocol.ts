// Messages between the local Lambda runner (main thread) and one execution environment (a worker thread),
// and the error shape Lambda reports for a failed invocation.

/** What Lambda returns for a function error: `{"errorType","errorMessage","trace"}`. */
export type LambdaError = {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace?: readonly string[];
};

export type EnvironmentConfig = {
  readonly bundlePath: string;
  readonly functionName: string;
  readonly memoryMb: number;
  readonly region: string;
  readonly accountId: string;
  readonly logStreamName: string;
};

export type InvokeMessage = {
  readonly type: "invoke";
  readonly id: number;
  readonly requestId: string;
  readonly traceId: string;
  /** JSON text of the event, as Lambda hands the runtime a serialized payload. */
  readonly payload: string;
  readonly deadline: number;
};

export type EnvironmentMessage =
  | { readonly type: "ready"; readonly initMs: number }
  | { readonly type: "init-error"; readonly error: LambdaError }
  | { readonly type: "result"; readonly id: number; readonly payload: string }
  | { readonly type: "error"; readonly id: number; readonly error: LambdaError };

export const toLambdaError = (error: unknown, fallbackType = "Error"): LambdaError => {
  if (error instanceof Error) {
    return {
      errorType: error.name || fallbackType,
      errorMessage: error.message,
      trace: (error.stack ?? "").split("\n"),
    };
  }
  return { errorType: fallbackType, errorMessage: String(error) };
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isLambdaError = (value: unknown): value is LambdaError =>
  isRecord(value) && typeof value.errorType === "string" && typeof value.errorMessage === "string";

/** Messages cross a thread boundary: the main thread checks their shape instead of trusting them. */
export const parseEnvironmentMessage = (value: unknown): EnvironmentMessage | undefined => {
  if (!isRecord(value)) return undefined;
  switch (value.type) {
    case "ready":
      return typeof value.initMs === "number" ? { type: "ready", initMs: value.initMs } : undefined;
    case "init-error":
      return isLambdaError(value.error) ? { type: "init-error", error: value.error } : undefined;
    case "result":
      return typeof value.id === "number" && typeof value.payload === "string"
        ? { type: "result", id: value.id, payload: value.payload }
        : undefined;
    case "error":
      return typeof value.id === "number" && isLambdaError(value.error)
        ? { type: "error", id: value.id, error: value.error }
        : undefined;
    default:
      return undefined;
  }
};
