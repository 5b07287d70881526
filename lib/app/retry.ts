// Retry with capped exponential backoff and full jitter, for calls whose failure class says a retry is
// safe (Twilio 20429/5xx: "never processed and always safe to retry"). Clock and randomness are
// injected so tests don't wait on the wall clock.

export type RetryPolicy = {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly isRetryable: (error: unknown) => boolean;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** Stop retrying when the next delay would pass this budget (e.g. the Lambda's remaining time). */
  readonly remainingMs?: () => number;
};

export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const backoffDelay = (attempt: number, policy: RetryPolicy): number => {
  const random = policy.random ?? Math.random;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
};

export const withRetry = async <T>(operation: () => Promise<T>, policy: RetryPolicy): Promise<T> => {
  const sleep = policy.sleep ?? realSleep;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      if (attempt + 1 >= policy.attempts || !policy.isRetryable(error)) throw error;
      const delay = backoffDelay(attempt, policy);
      if (policy.remainingMs !== undefined && policy.remainingMs() < delay + 1000) throw error;
      await sleep(delay);
    }
  }
};
