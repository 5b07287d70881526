// Mirror function configuration, parsed once at cold start: the conversations table, the tenant
// directory with each tenant's `mirror` section, the Twilio REST settings and the metrics namespace.
//
// TENANT_CONFIG `tenants.<id>.mirror` (every field optional):
//   {
//     "timers": { "inactive": "PT24H", "closed": "P7D" },  // Twilio's own timers on threads we create;
//                                                           // null or "PT0S" turns one off
//     "messagingServiceSid": "MG…",                        // conversation's Messaging Service
//     "bindCustomer": true,                                // add the customer as an SMS/WhatsApp participant
//     "businessAuthor": "acme-support"                     // author of what sendOutbound posts into a
//                                                           // thread when the send names none; "system"
//   }
import type { TenantDirectory } from "../domain/tenants.ts";
import { type Env, EnvNames, optionalString, requireString, tableEnvName } from "./env.ts";
import { ConfigError } from "./errors.ts";
import { parseTenantDirectory } from "./tenant-config.ts";
import { parseTwilioRestConfig, type TwilioRestConfig } from "./twilio-config.ts";

export type ThreadTimers = {
  /** ISO 8601 duration, at least one minute. */
  readonly inactive: string | undefined;
  /** ISO 8601 duration, at least ten minutes (Twilio 50376). */
  readonly closed: string | undefined;
};

export type TenantMirrorSettings = {
  readonly timers: ThreadTimers;
  readonly messagingServiceSid: string | undefined;
  /**
   * Bind the customer (address + our number as proxy) into the thread so agents can answer from
   * Conversations and Twilio captures the customer's later messages itself. See README.md "Mirroring"
   * for what binding means for outbound mirroring.
   */
  readonly bindCustomer: boolean;
  /**
   * Author of a message `sendOutbound` posts into the customer's thread when the send names none: the
   * business identity agents see (for example `acme-support`).
   */
  readonly businessAuthor: string;
};

export type MirrorConfig = {
  readonly conversationsTableName: string;
  readonly tenants: TenantDirectory;
  readonly settingsFor: (tenantId: string) => TenantMirrorSettings;
  readonly twilio: TwilioRestConfig;
  readonly metricsNamespace: string;
};

export const DefaultThreadTimers: ThreadTimers = { inactive: "PT24H", closed: "P7D" };

export const DefaultMirrorSettings: TenantMirrorSettings = {
  timers: DefaultThreadTimers,
  messagingServiceSid: undefined,
  bindCustomer: true,
  businessAuthor: "system",
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const durationPattern = /^P(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?$/;

/** Milliseconds of an ISO 8601 duration of weeks/days/hours/minutes/seconds; undefined if malformed. */
export const durationMs = (value: string): number | undefined => {
  const match = durationPattern.exec(value);
  if (match === null || value === "P" || value.endsWith("T")) return undefined;
  const [, weeks, days, hours, minutes, seconds] = match.map((part) => Number(part ?? 0));
  return (
    (((weeks ?? 0) * 7 + (days ?? 0)) * 24 * 3600 +
      (hours ?? 0) * 3600 +
      (minutes ?? 0) * 60 +
      (seconds ?? 0)) *
    1000
  );
};

const timer = (value: unknown, where: string, minMs: number, fallback: string | undefined) => {
  if (value === undefined) return fallback;
  if (value === null) return undefined;
  if (typeof value !== "string") throw new ConfigError(`${where} must be an ISO 8601 duration or null`);
  const ms = durationMs(value);
  if (ms === undefined) throw new ConfigError(`${where} must be an ISO 8601 duration such as PT24H`);
  if (ms === 0) return undefined;
  if (ms < minMs) {
    const minutes = minMs / 60_000;
    throw new ConfigError(`${where} must be at least ${minutes} minute${minutes === 1 ? "" : "s"}`);
  }
  return value;
};

export const parseTenantMirrorSettings = (raw: unknown, where: string): TenantMirrorSettings => {
  if (raw === undefined) return DefaultMirrorSettings;
  if (!isRecord(raw)) throw new ConfigError(`${where} must be an object`);
  const timers = raw.timers;
  if (timers !== undefined && timers !== null && !isRecord(timers)) {
    throw new ConfigError(`${where}.timers must be an object or null`);
  }
  const messagingServiceSid = raw.messagingServiceSid;
  if (
    messagingServiceSid !== undefined &&
    (typeof messagingServiceSid !== "string" || !/^MG[0-9a-fA-F]{32}$/.test(messagingServiceSid))
  ) {
    throw new ConfigError(`${where}.messagingServiceSid must be a Messaging Service SID (MG…)`);
  }
  const bindCustomer = raw.bindCustomer;
  if (bindCustomer !== undefined && typeof bindCustomer !== "boolean") {
    throw new ConfigError(`${where}.bindCustomer must be true or false`);
  }
  const businessAuthor = raw.businessAuthor;
  if (businessAuthor !== undefined && (typeof businessAuthor !== "string" || businessAuthor.trim() === "")) {
    throw new ConfigError(`${where}.businessAuthor must be a non-empty string`);
  }
  return {
    timers:
      timers === null
        ? { inactive: undefined, closed: undefined }
        : {
            inactive: timer(
              timers?.inactive,
              `${where}.timers.inactive`,
              60_000,
              DefaultThreadTimers.inactive,
            ),
            closed: timer(timers?.closed, `${where}.timers.closed`, 10 * 60_000, DefaultThreadTimers.closed),
          },
    messagingServiceSid,
    bindCustomer: bindCustomer ?? DefaultMirrorSettings.bindCustomer,
    businessAuthor: businessAuthor ?? DefaultMirrorSettings.businessAuthor,
  };
};

/** Every tenant's section is parsed up front so a typo fails the cold start, not a message. */
export const mirrorSettingsOf = (
  directory: TenantDirectory,
): ((tenantId: string) => TenantMirrorSettings) => {
  const parsed = new Map<string, TenantMirrorSettings>();
  for (const [tenantId, settings] of Object.entries(directory.tenants)) {
    parsed.set(
      tenantId,
      parseTenantMirrorSettings(settings.mirror, `TENANT_CONFIG.tenants.${tenantId}.mirror`),
    );
  }
  return (tenantId) => parsed.get(tenantId) ?? DefaultMirrorSettings;
};

export const parseMirrorConfig = (env: Env): MirrorConfig => {
  const tenants = parseTenantDirectory(env);
  return {
    conversationsTableName: requireString(env, tableEnvName("conversations")),
    tenants,
    settingsFor: mirrorSettingsOf(tenants),
    twilio: parseTwilioRestConfig(env),
    metricsNamespace: optionalString(env, EnvNames.metricsNamespace) ?? "TwilioBackbone",
  };
};
