// Scripted failures for retry tests: "the next N matching requests fail with 429" or "are slow".
// Rules are consumed in the order they were added; a request consumes at most one rule of each kind.

export interface FaultMatch {
  /** HTTP method, case-insensitive. */
  readonly method?: string;
  /** Matches when the request path starts with this (e.g. `/v1/Conversations`). */
  readonly pathPrefix?: string;
}

export interface FailureFault {
  /** 429, 500 and 503 are the retry-relevant ones; any 4xx/5xx is accepted (e.g. 400 with code 21610). */
  readonly status: number;
  /** Twilio error code; defaults to 20429 / 20500 / 20503 by status. */
  readonly code?: number;
  readonly message?: string;
  readonly count: number;
  readonly match?: FaultMatch;
}

export interface DelayFault {
  readonly ms: number;
  readonly count: number;
  readonly match?: FaultMatch;
}

export interface FaultInjector {
  /** The next `count` matching requests fail, unprocessed, with this status and Twilio error. */
  inject(fault: FailureFault): void;
  /**
   * The next `count` matching requests are processed at once but answered `ms` later, like a slow
   * network: a client that times out has still changed the emulator's state.
   */
  delay(fault: DelayFault): void;
  clear(): void;
  /** Unconsumed requests across all rules, so a test can assert its burst was used up. */
  pending(): { failures: number; delays: number };
}

interface Rule<T> {
  readonly fault: T;
  remaining: number;
}

export class Faults implements FaultInjector {
  #failures: Rule<FailureFault>[] = [];
  #delays: Rule<DelayFault>[] = [];

  inject(fault: FailureFault): void {
    if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) {
      throw new RangeError(`fault status must be a 4xx or 5xx HTTP status, got ${fault.status}`);
    }
    this.#failures.push({ fault, remaining: checkCount(fault.count) });
  }

  delay(fault: DelayFault): void {
    if (!(fault.ms >= 0)) throw new RangeError(`delay must be >= 0 ms, got ${fault.ms}`);
    this.#delays.push({ fault, remaining: checkCount(fault.count) });
  }

  clear(): void {
    this.#failures = [];
    this.#delays = [];
  }

  pending(): { failures: number; delays: number } {
    const sum = (rules: readonly Rule<unknown>[]) => rules.reduce((total, rule) => total + rule.remaining, 0);
    return { failures: sum(this.#failures), delays: sum(this.#delays) };
  }

  takeFailure(method: string, path: string): FailureFault | undefined {
    return take(this.#failures, method, path);
  }

  takeDelay(method: string, path: string): DelayFault | undefined {
    return take(this.#delays, method, path);
  }
}

function checkCount(count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`fault count must be a positive integer`);
  return count;
}

function take<T extends { readonly match?: FaultMatch }>(
  rules: Rule<T>[],
  method: string,
  path: string,
): T | undefined {
  const rule = rules.find(
    (candidate) => candidate.remaining > 0 && matches(candidate.fault.match, method, path),
  );
  if (rule === undefined) return undefined;
  rule.remaining -= 1;
  return rule.fault;
}

function matches(match: FaultMatch | undefined, method: string, path: string): boolean {
  if (match === undefined) return true;
  if (match.method !== undefined && match.method.toUpperCase() !== method.toUpperCase()) return false;
  return match.pathPrefix === undefined || path.startsWith(match.pathPrefix);
}
