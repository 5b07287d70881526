// Compliance function configuration, parsed once at cold start: where consent lives, where gated inbound
// messages go, and each tenant's `compliance` section of TENANT_CONFIG (keywords, replies, scope,
// retention) with defaults. Any invalid section fails the cold start, never a record.

import type { ScopeSetting } from "../domain/consent.ts";
import type { KeywordMatcher } from "../domain/keywords.ts";
import { DefaultKeywords, type KeywordLists, keywordMatcher, withExtraKeywords } from "../domain/keywords.ts";
import type { TenantDirectory } from "../domain/tenants.ts";
import { type Env, EnvNames, optionalString, queueEnvName, requireString, tableEnvName } from "./env.ts";
import { ConfigError } from "./errors.ts";
import { parseTenantDirectory } from "./tenant-config.ts";

export type ComplianceSettings = {
  readonly keywords: KeywordMatcher;
  /** Sent in reply to HELP/INFO (WhatsApp always; SMS only when `smsConfirmations`). */
  readonly helpText: string;
  readonly optOutConfirmation: string;
  readonly optInConfirmation: string;
  /**
   * Twilio answers its default keywords on SMS itself; off by default so nobody gets two replies. A
   * keyword Twilio does not know (an extra language) is answered by us on SMS regardless.
   */
  readonly smsConfirmations: boolean;
  readonly scope: ScopeSetting;
  /** How long consent records are kept (TTL); undefined = forever. */
  readonly recordRetentionDays: number | undefined;
};

export type ComplianceConfig = {
  readonly consentTableName: string;
  readonly mirrorQueueUrl: string;
  readonly tenants: TenantDirectory;
  readonly settings: ComplianceSettingsLookup;
  readonly metricsNamespace: string;
};

export type ComplianceSettingsLookup = (tenant: string) => ComplianceSettings;

/** Long enough to cover the four-year TCPA limitation period with margin; far beyond the dedupe window. */
export const DefaultRecordRetentionDays = 5 * 366;

export const DefaultComplianceTexts = {
  helpText: "Reply STOP to unsubscribe or START to resubscribe. Msg&Data rates may apply.",
  optOutConfirmation:
    "You have been unsubscribed and will not receive more messages from us. Reply START to resubscribe.",
  optInConfirmation: "You have been resubscribed. Reply STOP to unsubscribe or HELP for help.",
} as const;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const where = (tenant: string, key: string) =>
  `${EnvNames.tenantConfig}.tenants["${tenant}"].compliance.${key}`;

const stringList = (value: unknown, path: string): string[] => {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string" && item.trim() !== "")) {
    throw new ConfigError(`${path} must be a list of non-empty strings`);
  }
  return value;
};

const keywordLists = (value: unknown, path: string): Partial<KeywordLists> => {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new ConfigError(`${path} must be an object with optOut/optIn/help lists`);
  const lists: { optOut?: string[]; optIn?: string[]; help?: string[] } = {};
  for (const [name, list] of Object.entries(value)) {
    if (name !== "optOut" && name !== "optIn" && name !== "help") {
      throw new ConfigError(`${path}.${name} is not a keyword list (optOut, optIn, help)`);
    }
    lists[name] = stringList(list, `${path}.${name}`);
  }
  return lists;
};

const text = (value: unknown, fallback: string, path: string): string => {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || value.trim() === "" || value.length > 1600) {
    throw new ConfigError(`${path} must be a non-empty string of at most 1600 characters`);
  }
  return value;
};

const KnownKeys = new Set([
  "keywords",
  "extraKeywords",
  "helpText",
  "optOutConfirmation",
  "optInConfirmation",
  "smsConfirmations",
  "scope",
  "recordRetentionDays",
]);

/** Parses one tenant's `compliance` section (absent → all defaults). */
export const parseComplianceSettings = (tenant: string, raw: unknown): ComplianceSettings => {
  const section = raw ?? {};
  if (!isRecord(section)) throw new ConfigError(`${where(tenant, "")} must be an object`);
  for (const key of Object.keys(section)) {
    if (!KnownKeys.has(key)) throw new ConfigError(`${where(tenant, key)} is not a compliance setting`);
  }
  const replaced = keywordLists(section.keywords, where(tenant, "keywords"));
  const base: KeywordLists = { ...DefaultKeywords, ...replaced };
  const lists = withExtraKeywords(base, keywordLists(section.extraKeywords, where(tenant, "extraKeywords")));
  let keywords: KeywordMatcher;
  try {
    keywords = keywordMatcher(lists);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`${where(tenant, "keywords")}: ${reason}`, { cause: error });
  }
  const scope = section.scope ?? "sender";
  if (scope !== "sender" && scope !== "all") {
    throw new ConfigError(`${where(tenant, "scope")} must be "sender" or "all"`);
  }
  const smsConfirmations = section.smsConfirmations ?? false;
  if (typeof smsConfirmations !== "boolean") {
    throw new ConfigError(`${where(tenant, "smsConfirmations")} must be true or false`);
  }
  const retention =
    section.recordRetentionDays === undefined ? DefaultRecordRetentionDays : section.recordRetentionDays;
  if (
    retention !== null &&
    (typeof retention !== "number" || !Number.isInteger(retention) || retention < 30)
  ) {
    throw new ConfigError(
      `${where(tenant, "recordRetentionDays")} must be a whole number ≥ 30, or null (forever)`,
    );
  }
  return {
    keywords,
    helpText: text(section.helpText, DefaultComplianceTexts.helpText, where(tenant, "helpText")),
    optOutConfirmation: text(
      section.optOutConfirmation,
      DefaultComplianceTexts.optOutConfirmation,
      where(tenant, "optOutConfirmation"),
    ),
    optInConfirmation: text(
      section.optInConfirmation,
      DefaultComplianceTexts.optInConfirmation,
      where(tenant, "optInConfirmation"),
    ),
    smsConfirmations,
    scope,
    recordRetentionDays: retention ?? undefined,
  };
};

/** Every configured tenant parsed up front (so a bad section fails the cold start); unknown → defaults. */
export const complianceSettingsLookup = (directory: TenantDirectory): ComplianceSettingsLookup => {
  const parsed = new Map<string, ComplianceSettings>();
  for (const [tenant, settings] of Object.entries(directory.tenants)) {
    parsed.set(tenant, parseComplianceSettings(tenant, settings.compliance));
  }
  const fallback =
    parsed.get(directory.defaultTenant) ?? parseComplianceSettings(directory.defaultTenant, undefined);
  return (tenant) => parsed.get(tenant) ?? fallback;
};

export const parseComplianceConfig = (env: Env): ComplianceConfig => {
  const tenants = parseTenantDirectory(env);
  return {
    consentTableName: requireString(env, tableEnvName("consent")),
    mirrorQueueUrl: requireString(env, queueEnvName("mirror")),
    tenants,
    settings: complianceSettingsLookup(tenants),
    metricsNamespace: optionalString(env, EnvNames.metricsNamespace) ?? "TwilioBackbone",
  };
};
