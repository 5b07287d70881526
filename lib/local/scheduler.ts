// The local stand-in for the EventBridge Scheduler rate schedule that runs the stale-conversation closer.
// Like `rate(N minutes)`, the first run is one interval after the schedule starts, and a run is started
// on time even if the previous one has not finished (Scheduler does not wait either; the function's
// environments absorb the overlap). The payload is the schedule's input: `{}`.
export type Schedule = { stop(): void };

export const ScheduledEventInput = {} as const;

export const startRateSchedule = (options: {
  readonly rateMinutes: number;
  readonly run: (input: Record<string, unknown>) => Promise<unknown>;
  readonly onError?: (error: unknown) => void;
}): Schedule => {
  const timer = setInterval(() => {
    options.run({ ...ScheduledEventInput }).catch((error: unknown) => options.onError?.(error));
  }, options.rateMinutes * 60_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
};
