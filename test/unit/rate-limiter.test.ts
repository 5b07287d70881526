// The token bucket and the lane pool, in virtual time: rate, burst, ordering, and bounded concurrency.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type Clock, runLanes, tokenBucket } from "../../lib/app/rate-limiter.ts";
import { virtualClock } from "../support/virtual-clock.ts";

/** Start times of `count` callers that all ask at once. */
const startTimes = async (limiter: { acquire(): Promise<void> }, clock: Clock, count: number) =>
  Promise.all(
    Array.from({ length: count }, async () => {
      await limiter.acquire();
      return clock.now();
    }),
  );

/** The most calls that started inside any half-open window of `windowMs` (float slack for 1000/rate). */
const busiestWindow = (times: readonly number[], windowMs: number): number => {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let from = 0;
  for (let to = 0; to < sorted.length; to += 1) {
    while ((sorted[to] ?? 0) - (sorted[from] ?? 0) >= windowMs - 1e-6) from += 1;
    best = Math.max(best, to - from + 1);
  }
  return best;
};

describe("tokenBucket", () => {
  test("burst 1 spaces concurrent callers exactly 1/rate apart", async () => {
    const clock = virtualClock(1_000);
    const times = await startTimes(tokenBucket({ ratePerSecond: 25, clock }), clock, 100);
    assert.deepEqual(
      times,
      Array.from({ length: 100 }, (_, i) => 1_000 + i * 40),
    );
  });

  test("a burst starts at once, then the rate applies", async () => {
    const clock = virtualClock();
    const times = await startTimes(tokenBucket({ ratePerSecond: 10, burst: 5, clock }), clock, 8);
    assert.deepEqual(times, [0, 0, 0, 0, 0, 100, 200, 300]);
  });

  test("an idle period refills the burst, never beyond it", async () => {
    const clock = virtualClock();
    const limiter = tokenBucket({ ratePerSecond: 10, burst: 3, clock });
    await startTimes(limiter, clock, 3);
    await clock.sleep(60_000);
    const times = await startTimes(limiter, clock, 5);
    assert.deepEqual(times, [60_000, 60_000, 60_000, 60_100, 60_200]);
  });

  test("callers are served in the order they asked", async () => {
    const clock = virtualClock();
    const limiter = tokenBucket({ ratePerSecond: 50, clock });
    const served: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, caller) => {
        await limiter.acquire();
        served.push(caller);
      }),
    );
    assert.deepEqual(
      served,
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  test("whatever the arrival pattern, no second sees more than burst + rate - 1 calls", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 150 }),
        async (rate, burst, arrivals) => {
          const clock = virtualClock();
          const limiter = tokenBucket({ ratePerSecond: rate, burst, clock });
          const times = await Promise.all(
            arrivals.map(async (arrival) => {
              await clock.sleep(arrival);
              await limiter.acquire();
              return clock.now();
            }),
          );
          const busiest = busiestWindow(times, 1000);
          assert.ok(
            busiest <= burst + rate - 1,
            `${busiest} calls in one second at rate ${rate}, burst ${burst}`,
          );
          // Nobody is held back for longer than the queue ahead of them needs.
          assert.ok(Math.max(...times) <= Math.max(...arrivals) + (arrivals.length * 1000) / rate);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("adaptive: a 429 cuts the rate by 30 %, at most once per second, never below the floor", async () => {
    const clock = virtualClock();
    const limiter = tokenBucket({ ratePerSecond: 20, clock, adaptive: { floorPerSecond: 5 } });
    limiter.throttled();
    limiter.throttled();
    assert.equal(limiter.currentRate(), 14, "a burst of 429s in the same instant is one signal");
    for (let second = 1; second <= 10; second += 1) {
      await clock.sleep(1000);
      limiter.throttled();
    }
    assert.equal(limiter.currentRate(), 5);
    const times = await startTimes(limiter, clock, 3);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    assert.ok(
      gaps.every((gap) => gap > 190 && gap <= 200),
      `the cut rate spaces calls ~200 ms apart: ${gaps}`,
    );
  });

  test("adaptive: the rate climbs back linearly over time, to the configured rate and never past it", async () => {
    const clock = virtualClock();
    const limiter = tokenBucket({ ratePerSecond: 20, clock, adaptive: { floorPerSecond: 1 } });
    limiter.throttled();
    assert.equal(limiter.currentRate(), 14);
    await clock.sleep(1000);
    assert.equal(limiter.currentRate(), 16, "10 % of the configured rate per second");
    await clock.sleep(60_000);
    assert.equal(limiter.currentRate(), 20);
  });

  test("without `adaptive`, throttling is ignored: the configured rate holds", () => {
    const limiter = tokenBucket({ ratePerSecond: 20, clock: virtualClock() });
    limiter.throttled();
    assert.equal(limiter.currentRate(), 20);
  });

  test("rejects a rate or burst that cannot work", () => {
    const clock = virtualClock();
    assert.throws(() => tokenBucket({ ratePerSecond: 0, clock }), RangeError);
    assert.throws(() => tokenBucket({ ratePerSecond: 5, burst: 0, clock }), RangeError);
    assert.throws(() => tokenBucket({ ratePerSecond: 5, burst: 1.5, clock }), RangeError);
    assert.throws(
      () => tokenBucket({ ratePerSecond: 5, clock, adaptive: { floorPerSecond: 0 } }),
      RangeError,
    );
  });
});

describe("runLanes", () => {
  test("never runs more than `concurrency` workers at once, and runs all of them", async () => {
    const clock = virtualClock();
    const queue = Array.from({ length: 57 }, (_, i) => i);
    const processed: number[] = [];
    let inFlight = 0;
    let peak = 0;
    await runLanes(7, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        await clock.sleep(10 + (item % 5));
        processed.push(item);
        inFlight -= 1;
      }
    });
    assert.equal(peak, 7);
    assert.deepEqual(
      processed.sort((a, b) => a - b),
      Array.from({ length: 57 }, (_, i) => i),
    );
  });

  test("rethrows a lane's failure only after the other lanes have finished", async () => {
    const clock = virtualClock();
    const finished: number[] = [];
    await assert.rejects(
      runLanes(3, async (lane) => {
        if (lane === 0) throw new Error("lane 0 failed");
        await clock.sleep(100 * lane);
        finished.push(lane);
      }),
      /lane 0 failed/,
    );
    assert.deepEqual(finished, [1, 2]);
  });

  test("rejects a concurrency below one", async () => {
    await assert.rejects(
      runLanes(0, async () => {}),
      RangeError,
    );
  });
});
