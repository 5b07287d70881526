// Throughput controls for calls into rate-limited APIs (Twilio Conversations: about 30 mutations per
// second per service): a limiter that spaces calls evenly at a configured rate with a small burst, and a
// bounded worker pool. Time comes from an injected clock so tests run thousands of calls in virtual time.
import { realSleep } from "./retry.ts";

export type Clock = {
  now(): number;
  sleep(ms: number): Promise<void>;
};

export const systemClock: Clock = { now: () => Date.now(), sleep: realSleep };

export type RateLimiter = {
  /** Resolves when the caller may make one call; callers are served in the order they asked. */
  acquire(): Promise<void>;
};

/**
 * A token bucket in its GCRA form ("theoretical arrival time"): each caller reserves the next free slot
 * synchronously, then sleeps until it. Reserving before awaiting is what keeps concurrent callers from
 * all seeing the same free token. In any window of one second at most `ratePerSecond + burst` calls start.
 */
export const tokenBucket = (options: {
  readonly ratePerSecond: number;
  /** Calls that may start back to back after an idle period (1 = strictly evenly spaced). */
  readonly burst?: number;
  readonly clock: Clock;
}): RateLimiter => {
  if (!(options.ratePerSecond > 0)) throw new RangeError("ratePerSecond must be positive");
  const burst = options.burst ?? 1;
  if (!Number.isInteger(burst) || burst < 1) throw new RangeError("burst must be a positive integer");
  const interval = 1000 / options.ratePerSecond;
  const tolerance = (burst - 1) * interval;
  let theoreticalArrival = Number.NEGATIVE_INFINITY;
  return {
    async acquire() {
      const now = options.clock.now();
      const slot = Math.max(now, theoreticalArrival - tolerance);
      theoreticalArrival = Math.max(theoreticalArrival, slot) + interval;
      if (slot > now) await options.clock.sleep(slot - now);
    },
  };
};

/**
 * Runs `worker` on `concurrency` parallel lanes until each lane's worker returns. Workers pull their own
 * work (so a lane stops as soon as there is nothing left or the caller says stop); the first error is
 * rethrown after every lane has settled, so nothing is left running in the background.
 */
export const runLanes = async (concurrency: number, worker: (lane: number) => Promise<void>): Promise<void> => {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError("concurrency must be a positive integer");
  }
  const results = await Promise.allSettled(Array.from({ length: concurrency }, (_, lane) => worker(lane)));
  const failure = results.find((result) => result.status === "rejected");
  if (failure !== undefined) throw failure.reason;
};
