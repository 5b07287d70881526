// How the mirror retries Twilio calls: reads and idempotent writes on any retryable failure, and
// `isUnprocessed` for the one failure (20429) after which a non-idempotent create may be repeated blindly.
import { classifyTwilioFailure, hasTwilioCode, TwilioErrorCode } from "../../domain/twilio-errors.ts";
import { type RetryPolicy, withRetry } from "../retry.ts";
import type { MirrorDeps } from "./ports.ts";

export const twilioRetryPolicy = (
  tuning: MirrorDeps["retry"],
  isRetryable: (error: unknown) => boolean,
): RetryPolicy => ({
  attempts: tuning?.attempts ?? 4,
  baseDelayMs: 200,
  maxDelayMs: 2_000,
  isRetryable,
  ...(tuning?.sleep === undefined ? {} : { sleep: tuning.sleep }),
  ...(tuning?.random === undefined ? {} : { random: tuning.random }),
  ...(tuning?.remainingMs === undefined ? {} : { remainingMs: tuning.remainingMs }),
});

export const isRetryableFailure = (error: unknown): boolean => classifyTwilioFailure(error) === "retryable";

/** 20429 is "never processed": the one failure after which even a create may be repeated blindly. */
export const isUnprocessed = (error: unknown): boolean =>
  hasTwilioCode(error, TwilioErrorCode.tooManyRequests) ||
  (typeof error === "object" && error !== null && "status" in error && error.status === 429);

/** Reads, and writes made idempotent by a unique name or a binding check (50353, 50437). */
export const idempotent = <T>(deps: Pick<MirrorDeps, "retry">, operation: () => Promise<T>): Promise<T> =>
  withRetry(operation, twilioRetryPolicy(deps.retry, isRetryableFailure));
