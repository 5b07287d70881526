// The stale-conversation closer use case. One run walks the registry's activity index from a resumable
// cursor, qualifies each stale row with the tenant's rules, and closes it in Twilio within the
// configured mutation rate and concurrency:
//
//   claim in registry (re-check: no activity since selection, still closable, no other run on it)
//   → re-check the newest message in Twilio (our registry trails Twilio by the mirror's delay)
//   → post the closing notice (once: a notice already in Twilio is recognised by its attributes)
//   → State=closed (20404 / 50377 mean someone got there first: done) → record the outcome.
//
// The run stops taking work when the Lambda's remaining time drops below a safety margin, when
// `maxCloses` is reached, or when Twilio rejects our credentials; the position of the first unfinished
// page is saved so the next run continues there. Dry runs read and qualify only.
import type { CloserSettings } from "../config/closer-config.ts";
import {
  type Candidate,
  type CloserRule,
  checkTwilioActivity,
  closingNoticeAttributes,
  isClosableState,
  type LatestMessage,
  qualify,
  ruleFor,
  selectionThreshold,
} from "../domain/closer.ts";
import {
  classifyTwilioFailure,
  hasTwilioCode,
  TwilioApiError,
  TwilioErrorCode,
} from "../domain/twilio-errors.ts";
import { InvalidCloserRequestError } from "./errors.ts";
import { type Clock, type RateLimiter, runLanes } from "./rate-limiter.ts";
import { withRetry } from "./retry.ts";

// ---- Ports ------------------------------------------------------------------------------------------

export type ClaimResult =
  | { readonly kind: "claimed" }
  | { readonly kind: "changed"; readonly row: Candidate | undefined };

export interface CloserRegistry {
  /** Closable rows idle since before `olderThan`, one page; `next` undefined at the end of the index. */
  stalePage(
    olderThan: number,
    cursor: string | undefined,
    limit: number,
  ): Promise<{ readonly rows: readonly Candidate[]; readonly next: string | undefined }>;
  /** Whether `token` is a cursor `stalePage` could have issued. */
  isCursor(token: string): boolean;
  /** Atomic re-check + short lease: fails if the row changed since it was selected. */
  claimForClose(input: {
    conversationSid: string;
    seenLastActivityAt: number;
    now: number;
    leaseMs: number;
  }): Promise<ClaimResult>;
  setState(input: {
    conversationSid: string;
    tenantId: string;
    state: "closed" | "deleted";
    at: number;
    outcome: string;
  }): Promise<boolean>;
}

export interface ConversationCloser {
  latestMessage(conversationSid: string): Promise<LatestMessage | undefined>;
  postNotice(conversationSid: string, notice: { body: string; attributes: string }): Promise<void>;
  close(conversationSid: string): Promise<void>;
}

export interface CursorStore {
  load(): Promise<string | undefined>;
  save(cursor: string, at: number): Promise<void>;
  clear(): Promise<void>;
}

/** The closer's settings minus the mutation rate, which reaches a run as its `limiter`. */
export type CloserRunSettings = Omit<CloserSettings, "maxMutationsPerSecond">;

export type CloserDeps = {
  readonly registry: CloserRegistry;
  readonly twilio: ConversationCloser;
  readonly cursors: CursorStore;
  /**
   * Every Twilio mutation (notice, close, and each retry of them) takes one token first, and reports
   * back whether Twilio throttled it.
   */
  readonly limiter: RateLimiter;
  readonly clock: Clock;
  readonly random?: () => number;
  readonly settings: CloserRunSettings;
};

// ---- Request ----------------------------------------------------------------------------------------

export type CloserRequest = {
  readonly dryRun: boolean;
  /** Start here instead of at the stored cursor (on-demand runs; a dry run's `cursor` pages on). */
  readonly cursor: string | undefined;
  /** Stop after this many close attempts (or, in a dry run, this many listed candidates). */
  readonly maxCloses: number | undefined;
};

const flag = (value: unknown, name: string): boolean => {
  if (value === undefined || value === null) return false;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new InvalidCloserRequestError(`${name} must be true or false`);
};

/**
 * The Scheduler payload (empty for scheduled runs) or an on-demand one: `{ dryRun?, cursor?, maxCloses? }`.
 * Other fields are ignored, so an EventBridge event envelope is accepted as a plain scheduled run.
 */
export const parseCloserRequest = (event: unknown): CloserRequest => {
  if (event === undefined || event === null)
    return { dryRun: false, cursor: undefined, maxCloses: undefined };
  if (typeof event !== "object" || Array.isArray(event)) {
    throw new InvalidCloserRequestError("the closer payload must be a JSON object");
  }
  const dryRun = "dryRun" in event ? flag(event.dryRun, "dryRun") : false;
  const cursor = "cursor" in event ? event.cursor : undefined;
  if (cursor !== undefined && cursor !== null && (typeof cursor !== "string" || cursor.length > 4096)) {
    throw new InvalidCloserRequestError("cursor must be the string a previous run returned");
  }
  const rawMax = "maxCloses" in event ? event.maxCloses : undefined;
  const maxCloses = typeof rawMax === "string" && /^\d+$/.test(rawMax) ? Number(rawMax) : rawMax;
  if (maxCloses !== undefined && maxCloses !== null) {
    if (typeof maxCloses !== "number" || !Number.isInteger(maxCloses) || maxCloses < 1) {
      throw new InvalidCloserRequestError("maxCloses must be a positive whole number");
    }
  }
  return {
    dryRun,
    cursor: typeof cursor === "string" && cursor !== "" ? cursor : undefined,
    maxCloses: typeof maxCloses === "number" ? maxCloses : undefined,
  };
};

// ---- Summary ----------------------------------------------------------------------------------------

export type StopReason =
  /** Every shard was read to the end: the stored cursor is cleared, the next run starts a new pass. */
  | "pass-complete"
  /** Less than the safety margin of Lambda time was left. */
  | "time"
  | "max-closes"
  /** Twilio rejected our credentials, or the registry could not be read: retrying row by row cannot help. */
  | "aborted"
  /** No rule is enabled: nothing is read. */
  | "disabled";

export type CloserFailure = {
  readonly conversationSid: string;
  readonly code: number | undefined;
  readonly status: number | undefined;
  readonly message: string;
};

export type CloserSummary = {
  readonly dryRun: boolean;
  readonly stoppedBy: StopReason;
  readonly abortReason: string | undefined;
  readonly startedFrom: "pass-start" | "stored-cursor" | "request-cursor";
  /** A stored cursor this registry could not read (e.g. after a shard-count change) was dropped. */
  readonly cursorReset: boolean;
  /** Where the next run continues; undefined when the pass completed. */
  readonly cursor: string | undefined;
  readonly cursorSaved: boolean;
  /** Epoch ms: rows idle since before this were read (the shortest enabled idle threshold). */
  readonly threshold: number | undefined;
  readonly candidatesRead: number;
  /** Closed by this run, plus those Twilio reported already closed or deleted (20404/50377). */
  readonly closed: number;
  readonly alreadyClosed: number;
  readonly skipped: number;
  readonly failed: number;
  readonly skippedBy: Readonly<Record<string, number>>;
  readonly failedBy: Readonly<Record<string, number>>;
  /** Twilio mutations sent (notices, closes and their retries), each one token of the rate limit. */
  readonly mutations: number;
  /** Twilio answers of 429/20429 that were retried. */
  readonly throttled: number;
  /** Closes that succeeded in Twilio but could not be recorded (the state webhook corrects those). */
  readonly unrecorded: number;
  /** Dry run: the SIDs that would be closed, in index order. Empty on real runs. */
  readonly wouldClose: readonly string[];
  /** Up to 10 failures, for the log line. */
  readonly failures: readonly CloserFailure[];
  readonly durationMs: number;
};

/** Why a run skipped a row after selection, beyond the domain's qualification reasons. */
export const RecheckSkips = {
  activeAgain: "active-again",
  activeInTwilio: "active-in-twilio",
  noLongerClosable: "no-longer-closable",
  claimedElsewhere: "claimed-elsewhere",
} as const;

export const CloseOutcomes = {
  closedByCloser: "closed-by-closer",
  alreadyClosed: "already-closed",
  notFound: "not-found",
} as const;

// ---- Use case ---------------------------------------------------------------------------------------

type Page = {
  /** The cursor this page was read from; undefined = the start of a pass. */
  readonly start: string | undefined;
  readonly rows: readonly Candidate[];
  taken: number;
  done: number;
};

type RowResult =
  | { readonly kind: "closed"; readonly already: boolean; readonly recorded: boolean }
  | { readonly kind: "skipped"; readonly reason: string }
  | { readonly kind: "failed"; readonly error: unknown }
  | { readonly kind: "listed" }
  /** Not processed (the run is stopping); the row's page is read again next time. */
  | { readonly kind: "deferred" };

const MaxReportedFailures = 10;

const isThrottle = (error: unknown): boolean =>
  hasTwilioCode(error, TwilioErrorCode.tooManyRequests) ||
  (error instanceof TwilioApiError && error.status === 429);

const failureKey = (error: unknown): string =>
  error instanceof TwilioApiError
    ? String(error.code ?? error.status ?? "network")
    : error instanceof Error
      ? error.name
      : "unknown";

export const runCloser = async (
  deps: CloserDeps,
  request: CloserRequest,
  invocation: { readonly remainingMs: () => number },
): Promise<CloserSummary> => {
  const { registry, twilio, cursors, limiter, clock, settings } = deps;
  const startedAt = clock.now();
  const threshold = selectionThreshold(settings.policy, startedAt);

  if (request.cursor !== undefined && !registry.isCursor(request.cursor)) {
    throw new InvalidCloserRequestError("cursor was not issued by this closer");
  }
  let startedFrom: CloserSummary["startedFrom"] = "pass-start";
  let cursorReset = false;
  let start: string | undefined;
  if (request.cursor !== undefined) {
    start = request.cursor;
    startedFrom = "request-cursor";
  } else if (!request.dryRun) {
    const stored = await cursors.load();
    if (stored !== undefined && registry.isCursor(stored)) {
      start = stored;
      startedFrom = "stored-cursor";
    } else if (stored !== undefined) {
      cursorReset = true;
    }
  }

  const skippedBy: Record<string, number> = {};
  const failedBy: Record<string, number> = {};
  const failures: CloserFailure[] = [];
  const wouldClose: string[] = [];
  let candidatesRead = 0;
  let closed = 0;
  let alreadyClosed = 0;
  let skipped = 0;
  let failed = 0;
  let mutations = 0;
  let throttled = 0;
  let unrecorded = 0;
  let attempts = 0;
  let stopReason: StopReason | undefined = threshold === undefined ? "disabled" : undefined;
  let abortReason: string | undefined;

  // Pages are kept from the first one with unfinished rows onwards; everything before is done.
  const pages: Page[] = [];
  let nextCursor = start;
  let exhausted = false;
  let fetching: Promise<void> | undefined;
  // What the store holds now, as far as this run knows (a request cursor is not in the store).
  let saved: string | undefined = startedFrom === "stored-cursor" ? start : undefined;

  /** Position of the first unfinished row's page, or "complete" when the whole index was processed. */
  const checkpoint = (): { complete: true } | { complete: false; cursor: string | undefined } => {
    while (pages.length > 0 && (pages[0]?.done ?? 0) >= (pages[0]?.rows.length ?? 0)) pages.shift();
    const first = pages[0];
    if (first !== undefined) return { complete: false, cursor: first.start };
    return exhausted ? { complete: true } : { complete: false, cursor: nextCursor };
  };

  // Saved as pages finish, so even a run killed by its timeout loses at most the pages in flight.
  const persistProgress = async (): Promise<void> => {
    if (request.dryRun) return;
    const position = checkpoint();
    const cursor = position.complete ? undefined : position.cursor;
    if (cursor === undefined || cursor === saved) return;
    await cursors.save(cursor, clock.now());
    saved = cursor;
  };

  const fetchPage = async (olderThan: number): Promise<void> => {
    try {
      await persistProgress();
      const page = await registry.stalePage(olderThan, nextCursor, settings.pageSize);
      pages.push({ start: nextCursor, rows: page.rows, taken: 0, done: 0 });
      candidatesRead += page.rows.length;
      nextCursor = page.next;
      exhausted = page.next === undefined;
    } catch (error) {
      stopReason ??= "aborted";
      abortReason ??= `registry unavailable: ${error instanceof Error ? error.message : String(error)}`;
    }
  };

  const take = async (): Promise<{ row: Candidate; page: Page } | undefined> => {
    for (;;) {
      if (stopReason !== undefined || threshold === undefined) return undefined;
      if (invocation.remainingMs() < settings.safetyMarginMs) {
        stopReason = "time";
        return undefined;
      }
      const page = pages.at(-1);
      const row = page?.rows[page.taken];
      if (page !== undefined && row !== undefined) {
        page.taken += 1;
        return { row, page };
      }
      if (exhausted) return undefined;
      fetching ??= fetchPage(threshold).finally(() => {
        fetching = undefined;
      });
      await fetching;
    }
  };

  const retryPolicy = (isRetryable: (error: unknown) => boolean) => ({
    ...settings.retry,
    isRetryable: (error: unknown) => {
      const retry = isRetryable(error);
      if (retry && isThrottle(error)) throttled += 1;
      return retry;
    },
    sleep: (ms: number) => clock.sleep(ms),
    ...(deps.random === undefined ? {} : { random: deps.random }),
    // Leave half the safety margin for in-flight work to finish and the cursor to be saved.
    remainingMs: () => invocation.remainingMs() - settings.safetyMarginMs / 2,
  });

  const retryable = (error: unknown) => classifyTwilioFailure(error) === "retryable";

  const read = <T>(operation: () => Promise<T>): Promise<T> => withRetry(operation, retryPolicy(retryable));

  const mutate = (operation: () => Promise<void>, isRetryable: (error: unknown) => boolean = retryable) =>
    withRetry(async () => {
      await limiter.acquire();
      mutations += 1;
      try {
        await operation();
      } catch (error) {
        if (isThrottle(error)) limiter.throttled();
        throw error;
      }
    }, retryPolicy(isRetryable));

  const record = async (row: Candidate, state: "closed" | "deleted", outcome: string): Promise<boolean> => {
    try {
      await registry.setState({
        conversationSid: row.conversationSid,
        tenantId: row.tenantId,
        state,
        at: clock.now(),
        outcome,
      });
      return true;
    } catch {
      return false;
    }
  };

  const whyChanged = (selected: Candidate, current: Candidate | undefined): string => {
    if (current === undefined || !isClosableState(current.state)) return RecheckSkips.noLongerClosable;
    if (current.lastActivityAt !== selected.lastActivityAt) return RecheckSkips.activeAgain;
    return RecheckSkips.claimedElsewhere;
  };

  const closeInTwilio = async (row: Candidate, rule: CloserRule): Promise<RowResult> => {
    const sid = row.conversationSid;
    let noticePosted = false;
    if (settings.verifyWithTwilio || settings.closingMessage !== undefined) {
      const latest = await read(() => twilio.latestMessage(sid));
      const check = checkTwilioActivity(rule, latest, clock.now());
      if (check.kind === "woke-up" && settings.verifyWithTwilio) {
        return { kind: "skipped", reason: RecheckSkips.activeInTwilio };
      }
      noticePosted = check.kind === "still-idle" && check.noticePosted;
    }
    if (settings.closingMessage !== undefined && !noticePosted) {
      const body = settings.closingMessage;
      // Only 20429 is retried here: it was "never processed", while a timed-out create may have posted
      // the notice. Any other failure fails this row; the next run sees the notice in Twilio if it went out.
      await mutate(() => twilio.postNotice(sid, { body, attributes: closingNoticeAttributes() }), isThrottle);
    }
    await mutate(() => twilio.close(sid));
    const recorded = await record(row, "closed", CloseOutcomes.closedByCloser);
    return { kind: "closed", already: false, recorded };
  };

  const closeOne = async (row: Candidate, rule: CloserRule): Promise<RowResult> => {
    try {
      const claim = await registry.claimForClose({
        conversationSid: row.conversationSid,
        seenLastActivityAt: row.lastActivityAt,
        now: clock.now(),
        leaseMs: settings.claimLeaseMs,
      });
      if (claim.kind === "changed") return { kind: "skipped", reason: whyChanged(row, claim.row) };
      return await closeInTwilio(row, rule);
    } catch (error) {
      if (hasTwilioCode(error, TwilioErrorCode.notFound)) {
        const recorded = await record(row, "deleted", CloseOutcomes.notFound);
        return { kind: "closed", already: true, recorded };
      }
      if (hasTwilioCode(error, TwilioErrorCode.closedConversationImmutable)) {
        const recorded = await record(row, "closed", CloseOutcomes.alreadyClosed);
        return { kind: "closed", already: true, recorded };
      }
      if (classifyTwilioFailure(error) === "configuration" && error instanceof TwilioApiError) {
        stopReason ??= "aborted";
        abortReason ??= `Twilio rejected the closer's credentials (${error.code ?? error.status})`;
      }
      return { kind: "failed", error };
    }
  };

  const handle = async (row: Candidate): Promise<RowResult> => {
    const verdict = qualify(settings.policy, row, clock.now());
    if (!verdict.close) return { kind: "skipped", reason: verdict.reason };
    if (request.maxCloses !== undefined && attempts >= request.maxCloses) {
      stopReason ??= "max-closes";
      return { kind: "deferred" };
    }
    attempts += 1;
    if (request.dryRun) return { kind: "listed" };
    return closeOne(row, ruleFor(settings.policy, row.tenantId));
  };

  const tally = (row: Candidate, result: RowResult): void => {
    switch (result.kind) {
      case "closed":
        closed += 1;
        if (result.already) alreadyClosed += 1;
        if (!result.recorded) unrecorded += 1;
        return;
      case "skipped":
        skipped += 1;
        skippedBy[result.reason] = (skippedBy[result.reason] ?? 0) + 1;
        return;
      case "failed": {
        failed += 1;
        const key = failureKey(result.error);
        failedBy[key] = (failedBy[key] ?? 0) + 1;
        if (failures.length < MaxReportedFailures) {
          const error = result.error;
          failures.push({
            conversationSid: row.conversationSid,
            code: error instanceof TwilioApiError ? error.code : undefined,
            status: error instanceof TwilioApiError ? error.status : undefined,
            message: error instanceof Error ? error.message : String(error),
          });
        }
        return;
      }
      case "listed":
        wouldClose.push(row.conversationSid);
        return;
      case "deferred":
        return;
    }
  };

  await runLanes(request.dryRun ? 1 : settings.concurrency, async () => {
    for (;;) {
      const next = await take();
      if (next === undefined) return;
      const result = await handle(next.row);
      tally(next.row, result);
      if (result.kind !== "deferred") next.page.done += 1;
    }
  });

  const position = checkpoint();
  stopReason ??= position.complete ? "pass-complete" : "time";
  let cursorSaved = true;
  if (!request.dryRun && stopReason !== "disabled") {
    try {
      if (position.complete || position.cursor === undefined) await cursors.clear();
      else if (position.cursor !== saved) await cursors.save(position.cursor, clock.now());
    } catch {
      cursorSaved = false;
    }
  }

  return {
    dryRun: request.dryRun,
    stoppedBy: stopReason,
    abortReason,
    startedFrom,
    cursorReset,
    cursor: position.complete ? undefined : position.cursor,
    cursorSaved,
    threshold,
    candidatesRead,
    closed,
    alreadyClosed,
    skipped,
    failed,
    skippedBy,
    failedBy,
    mutations,
    throttled,
    unrecorded,
    wouldClose,
    failures,
    durationMs: clock.now() - startedAt,
  };
};
