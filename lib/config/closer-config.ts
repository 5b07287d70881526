// Closer function configuration, parsed and validated once at cold start: the conversations table, the
// idle policy (global defaults from env, per-tenant overrides from TENANT_CONFIG `tenants.<id>.closer`),
// and the throughput limits that keep the closer inside Twilio's rate limits.
import {
  type ClosableState,
  ClosableStates,
  type CloserPolicy,
  type CloserRule,
  isClosableState,
} from "../domain/closer.ts";
import { type Env, EnvNames, integerOr, optionalString, requireString, tableEnvName } from "./env.ts";
import { ConfigError } from "./errors.ts";
import { parseTenantDirectory } from "./tenant-config.ts";

export const CloserEnvNames = {
  idleMinutes: "CLOSER_IDLE_MINUTES",
  states: "CLOSER_STATES",
  neverClosePriorities: "CLOSER_NEVER_CLOSE_PRIORITIES",
  maxMutationsPerSecond: "CLOSER_MAX_MUTATIONS_PER_SECOND",
  concurrency: "CLOSER_CONCURRENCY",
  closingMessage: "CLOSER_CLOSING_MESSAGE",
  verifyWithTwilio: "CLOSER_VERIFY_WITH_TWILIO",
  safetyMarginSeconds: "CLOSER_SAFETY_MARGIN_SECONDS",
} as const;

export const CloserDefaults = {
  idleMinutes: 1440,
  /** Below Twilio's default 30 actions/s per service, leaving room for the mirror's own writes. */
  maxMutationsPerSecond: 25,
  concurrency: 10,
  safetyMarginSeconds: 15,
  pageSize: 100,
  /** Covers one close (claim → re-check → notice → close → record) with retries, far below the schedule rate. */
  claimLeaseMs: 5 * 60_000,
  retry: { attempts: 8, baseDelayMs: 250, maxDelayMs: 8_000 },
} as const;

export type CloserSettings = {
  readonly policy: CloserPolicy;
  readonly maxMutationsPerSecond: number;
  readonly concurrency: number;
  /** Posted as a system message before closing; undefined = close silently. */
  readonly closingMessage: string | undefined;
  /** Re-check the newest message in Twilio just before closing (reads do not count against the rate). */
  readonly verifyWithTwilio: boolean;
  /** Stop taking new work when less than this remains of the Lambda's time. */
  readonly safetyMarginMs: number;
  readonly pageSize: number;
  readonly claimLeaseMs: number;
  readonly retry: { readonly attempts: number; readonly baseDelayMs: number; readonly maxDelayMs: number };
};

export type CloserConfig = {
  readonly tableName: string;
  readonly metricsNamespace: string;
  readonly settings: CloserSettings;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const booleanOr = (env: Env, name: string, fallback: boolean): boolean => {
  const raw = optionalString(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw new ConfigError(`${name} must be "true" or "false", got "${raw}"`);
};

const listOf = (env: Env, name: string): string[] | undefined =>
  optionalString(env, name)
    ?.split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

const statesFrom = (values: readonly unknown[], where: string): ClosableState[] => {
  const states = values.map((value) => {
    if (typeof value !== "string" || !isClosableState(value)) {
      throw new ConfigError(
        `${where} may only contain ${ClosableStates.join(", ")}, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  });
  if (states.length === 0) throw new ConfigError(`${where} must name at least one state`);
  return states;
};

const prioritiesFrom = (values: readonly unknown[], where: string): string[] =>
  values.map((value) => {
    if (typeof value !== "string" || value.trim() === "") {
      throw new ConfigError(`${where} must be a list of non-empty strings`);
    }
    return value.trim().toLowerCase();
  });

const defaultRule = (env: Env): CloserRule => ({
  enabled: true,
  idleMs: integerOr(env, CloserEnvNames.idleMinutes, CloserDefaults.idleMinutes, 1) * 60_000,
  neverClosePriorities: prioritiesFrom(
    listOf(env, CloserEnvNames.neverClosePriorities) ?? [],
    CloserEnvNames.neverClosePriorities,
  ),
  states: statesFrom(listOf(env, CloserEnvNames.states) ?? [...ClosableStates], CloserEnvNames.states),
});

/** A tenant's `closer` section overrides the defaults field by field; absent fields inherit them. */
const tenantRule = (tenantId: string, section: unknown, defaults: CloserRule): CloserRule => {
  const where = `${EnvNames.tenantConfig}.tenants["${tenantId}"].closer`;
  if (!isRecord(section)) throw new ConfigError(`${where} must be an object`);
  const { enabled, idleMinutes, neverClosePriorities, states } = section;
  if (enabled !== undefined && typeof enabled !== "boolean") {
    throw new ConfigError(`${where}.enabled must be true or false`);
  }
  if (idleMinutes !== undefined && !(Number.isInteger(idleMinutes) && Number(idleMinutes) >= 1)) {
    throw new ConfigError(`${where}.idleMinutes must be a whole number of minutes ≥ 1`);
  }
  if (neverClosePriorities !== undefined && !Array.isArray(neverClosePriorities)) {
    throw new ConfigError(`${where}.neverClosePriorities must be a list`);
  }
  if (states !== undefined && !Array.isArray(states)) throw new ConfigError(`${where}.states must be a list`);
  return {
    enabled: enabled ?? defaults.enabled,
    idleMs: typeof idleMinutes === "number" ? idleMinutes * 60_000 : defaults.idleMs,
    neverClosePriorities:
      neverClosePriorities === undefined
        ? defaults.neverClosePriorities
        : prioritiesFrom(neverClosePriorities, `${where}.neverClosePriorities`),
    states: states === undefined ? defaults.states : statesFrom(states, `${where}.states`),
  };
};

export const parseCloserPolicy = (env: Env): CloserPolicy => {
  const defaults = defaultRule(env);
  const tenants: Record<string, CloserRule> = {};
  for (const [tenantId, settings] of Object.entries(parseTenantDirectory(env).tenants)) {
    if (settings.closer !== undefined) tenants[tenantId] = tenantRule(tenantId, settings.closer, defaults);
  }
  return { defaults, tenants };
};

export const parseCloserSettings = (env: Env): CloserSettings => {
  const closingMessage = optionalString(env, CloserEnvNames.closingMessage);
  // Conversations messages over SMS/WhatsApp carry at most 1600 characters.
  if (closingMessage !== undefined && closingMessage.length > 1600) {
    throw new ConfigError(`${CloserEnvNames.closingMessage} must be at most 1600 characters`);
  }
  return {
    policy: parseCloserPolicy(env),
    maxMutationsPerSecond: integerOr(
      env,
      CloserEnvNames.maxMutationsPerSecond,
      CloserDefaults.maxMutationsPerSecond,
      1,
    ),
    concurrency: integerOr(env, CloserEnvNames.concurrency, CloserDefaults.concurrency, 1),
    closingMessage,
    verifyWithTwilio: booleanOr(env, CloserEnvNames.verifyWithTwilio, true),
    safetyMarginMs:
      integerOr(env, CloserEnvNames.safetyMarginSeconds, CloserDefaults.safetyMarginSeconds, 1) * 1000,
    pageSize: CloserDefaults.pageSize,
    claimLeaseMs: CloserDefaults.claimLeaseMs,
    retry: CloserDefaults.retry,
  };
};

export const parseCloserConfig = (env: Env): CloserConfig => ({
  tableName: requireString(env, tableEnvName("conversations")),
  metricsNamespace: optionalString(env, EnvNames.metricsNamespace) ?? "TwilioBackbone",
  settings: parseCloserSettings(env),
});
