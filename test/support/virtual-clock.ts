// Virtual time for tests of code that takes a `Clock` (lib/app/rate-limiter.ts): sleeps cost no wall
// time, and their order and timing are deterministic.
import type { Clock } from "../../lib/app/rate-limiter.ts";

/**
 * Discrete-event clock: `sleep` registers a timer; once every pending promise chain has settled
 * (setImmediate runs after the microtask queue drains) time jumps to the earliest timer.
 */
export const virtualClock = (start = 0): Clock => {
  let now = start;
  let sequence = 0;
  let scheduled = false;
  const timers: { at: number; order: number; resolve: () => void }[] = [];
  const fire = () => {
    scheduled = false;
    timers.sort((a, b) => a.at - b.at || a.order - b.order);
    const timer = timers.shift();
    if (timer === undefined) return;
    now = Math.max(now, timer.at);
    timer.resolve();
    if (timers.length > 0) schedule();
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(fire);
  };
  return {
    now: () => now,
    sleep: (ms) =>
      new Promise((resolve) => {
        timers.push({ at: now + Math.max(0, ms), order: sequence++, resolve });
        schedule();
      }),
  };
};
