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
  /** The API answered "too many requests": slow down (adaptive limiters only). */
  throttled(): void;
  /** The rate applied now, calls per second. */
  currentRate(): number;
};

/** After a 429 the rate is cut by this factor, at most once per second (one burst = one cut). */
const ThrottleCut = 0.7;
/** Then it climbs back by this share of the configured rate per second (floor to full in ≤ 10 s). */
const RecoveryPerSecond = 0.1;

/**
 * A token bucket in its GCRA form ("theoretical arrival time"): each caller reserves the next free slot
 * synchronously, then sleeps until it. Reserving before awaiting is what keeps concurrent callers from
 * all seeing the same free token. In any one-second window at most `burst + ratePerSecond - 1` calls start.
 *
 * With `adaptive`, the rate also backs off multiplicatively on throttling and recovers linearly with
 * time (AIMD): the configured rate is a ceiling, not a promise, because other workloads (the mirror's
 * sends) share Twilio's per-service budget and a 429 is the only signal of what is left.
 */
export const tokenBucket = (options: {
  readonly ratePerSecond: number;
  /** Calls that may start back to back after an idle period (1 = strictly evenly spaced). */
  readonly burst?: number;
  readonly clock: Clock;
  readonly adaptive?: { readonly floorPerSecond: number };
}): RateLimiter => {
  const ceiling = options.ratePerSecond;
  if (!(ceiling > 0)) throw new RangeError("ratePerSecond must be positive");
  const burst = options.burst ?? 1;
  if (!Number.isInteger(burst) || burst < 1) throw new RangeError("burst must be a positive integer");
  const floor = Math.min(options.adaptive?.floorPerSecond ?? ceiling, ceiling);
  if (!(floor > 0)) throw new RangeError("floorPerSecond must be positive");
  let rateAfterCut = ceiling;
  let lastCutAt = Number.NEGATIVE_INFINITY;
  let theoreticalArrival = Number.NEGATIVE_INFINITY;
  const rateAt = (now: number): number =>
    Math.min(ceiling, rateAfterCut + ((now - lastCutAt) / 1000) * ceiling * RecoveryPerSecond);
  return {
    async acquire() {
      const now = options.clock.now();
      const interval = 1000 / rateAt(now);
      const slot = Math.max(now, theoreticalArrival - (burst - 1) * interval);
      theoreticalArrival = Math.max(theoreticalArrival, slot) + interval;
      if (slot > now) await options.clock.sleep(slot - now);
    },
    throttled() {
      if (options.adaptive === undefined) return;
      const now = options.clock.now();
      if (now - lastCutAt < 1000) return;
      rateAfterCut = Math.max(floor, rateAt(now) * ThrottleCut);
      lastCutAt = now;
    },
    currentRate: () => rateAt(options.clock.now()),
  };
};

/**
 * Runs `worker` on `concurrency` parallel lanes until each lane's worker returns. Workers pull their own
 * work (so a lane stops as soon as there is nothing left or the caller says stop); the first error is
 * rethrown after every lane has settled, so nothing is left running in the background.
 */
export const runLanes = async (
  concurrency: number,
  worker: (lane: number) => Promise<void>,
): Promise<void> => {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError("concurrency must be a positive integer");
  }
  const results = await Promise.allSettled(Array.from({ length: concurrency }, (_, lane) => worker(lane)));
  const failure = results.find((result) => result.status === "rejected");
  if (failure !== undefined) throw failure.reason;
};
