// Small statistics helpers shared by the benchmark and the load test.

/** Nearest-rank percentile (p in 0–100) of an unsorted sample; NaN for an empty one. */
export const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};

export const median = (values: readonly number[]): number => percentile(values, 50);
