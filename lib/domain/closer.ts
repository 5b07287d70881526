// Which conversations the stale-conversation closer may close, decided from our own registry row (last
// activity we observed, state, tenant, priority) and the per-tenant closer rules, at an injected `now`.
// Pure: no clock, no I/O. "Idle" is strict: a conversation qualifies once it has been quiet for longer
// than the threshold, which matches the registry's `lastActivityAt < now - idle` index query exactly.

/** Registry states a conversation can be closed from; the sparse index holds only these. */
export const ClosableStates = ["active", "inactive"] as const;
export type ClosableState = (typeof ClosableStates)[number];

export const isClosableState = (state: string): state is ClosableState =>
  (ClosableStates as readonly string[]).includes(state);

export type CloserRule = {
  /** False: the closer never touches this tenant's conversations (Twilio timers may still close them). */
  readonly enabled: boolean;
  /** Quiet for longer than this (ms) → stale. */
  readonly idleMs: number;
  /** Lower-cased priorities that are never auto-closed (e.g. "high"). */
  readonly neverClosePriorities: readonly string[];
  /** Which closable states qualify (e.g. only `inactive`, to leave active threads to Twilio's timers). */
  readonly states: readonly ClosableState[];
};

export type CloserPolicy = {
  /** Applies to tenants without their own `closer` section. */
  readonly defaults: CloserRule;
  readonly tenants: Readonly<Record<string, CloserRule>>;
};

/** What the closer knows about a conversation when it decides (a registry row). */
export type Candidate = {
  readonly conversationSid: string;
  readonly tenantId: string;
  readonly state: string;
  /** Epoch ms of the last activity we observed. */
  readonly lastActivityAt: number;
  readonly priority: string | undefined;
};

export const SkipReasons = {
  tenantDisabled: "tenant-disabled",
  notIdle: "not-idle",
  stateExcluded: "state-excluded",
  protectedPriority: "protected-priority",
} as const;
export type SkipReason = (typeof SkipReasons)[keyof typeof SkipReasons];

export type Verdict = { readonly close: true } | { readonly close: false; readonly reason: SkipReason };

export const ruleFor = (policy: CloserPolicy, tenantId: string): CloserRule =>
  policy.tenants[tenantId] ?? policy.defaults;

/** Quiet for strictly longer than the rule's threshold. Activity "in the future" (clock skew) is not idle. */
export const isIdle = (rule: CloserRule, lastActivityAt: number, now: number): boolean =>
  now - lastActivityAt > rule.idleMs;

export const qualify = (policy: CloserPolicy, candidate: Candidate, now: number): Verdict => {
  const rule = ruleFor(policy, candidate.tenantId);
  if (!rule.enabled) return { close: false, reason: SkipReasons.tenantDisabled };
  if (!isClosableState(candidate.state) || !rule.states.includes(candidate.state)) {
    return { close: false, reason: SkipReasons.stateExcluded };
  }
  const priority = candidate.priority?.trim().toLowerCase();
  if (priority !== undefined && rule.neverClosePriorities.includes(priority)) {
    return { close: false, reason: SkipReasons.protectedPriority };
  }
  if (!isIdle(rule, candidate.lastActivityAt, now)) return { close: false, reason: SkipReasons.notIdle };
  return { close: true };
};

/**
 * The `olderThan` bound for the index query: the shortest idle threshold of any enabled rule, so every
 * tenant's stale rows are read; rows of tenants with a longer threshold are then skipped by `qualify`.
 * Undefined when no rule is enabled (nothing to read at all).
 */
export const selectionThreshold = (policy: CloserPolicy, now: number): number | undefined => {
  const enabled = [policy.defaults, ...Object.values(policy.tenants)].filter((rule) => rule.enabled);
  if (enabled.length === 0) return undefined;
  return now - Math.min(...enabled.map((rule) => rule.idleMs));
};

/**
 * Marks the closing notice the closer posts, so a later run recognises its own message: it is not
 * customer activity, and it must not be posted twice when a close failed after the notice went out.
 */
export const ClosingNoticeAttribute = { key: "backboneCloser", value: "closing-notice" } as const;

export const closingNoticeAttributes = (): string =>
  JSON.stringify({ [ClosingNoticeAttribute.key]: ClosingNoticeAttribute.value });

export const isClosingNotice = (attributes: string | undefined): boolean => {
  if (attributes === undefined) return false;
  try {
    const parsed: unknown = JSON.parse(attributes);
    return (
      typeof parsed === "object" &&
      parsed !== null &&
      ClosingNoticeAttribute.key in parsed &&
      parsed[ClosingNoticeAttribute.key] === ClosingNoticeAttribute.value
    );
  } catch {
    return false;
  }
};

/** The newest message Twilio holds for a conversation, as the just-before-close re-check sees it. */
export type LatestMessage = { readonly at: number; readonly attributes: string | undefined };

export type TwilioActivityCheck =
  | { readonly kind: "still-idle"; readonly noticePosted: boolean }
  | { readonly kind: "woke-up"; readonly lastMessageAt: number };

/**
 * The re-check against Twilio itself: our registry trails Twilio by the webhook → queue → mirror delay
 * (longer if the mirror is backed up). A customer message newer than the idle threshold means the
 * conversation woke up; our own closing notice is not activity, only proof the notice already went out.
 */
export const checkTwilioActivity = (
  rule: CloserRule,
  latest: LatestMessage | undefined,
  now: number,
): TwilioActivityCheck => {
  if (latest === undefined) return { kind: "still-idle", noticePosted: false };
  if (isClosingNotice(latest.attributes)) return { kind: "still-idle", noticePosted: true };
  if (!isIdle(rule, latest.at, now)) return { kind: "woke-up", lastMessageAt: latest.at };
  return { kind: "still-idle", noticePosted: false };
};
