// Webhook function configuration, parsed and validated once at cold start.

import type { TenantDirectory } from "../domain/tenants.ts";
import {
  type Env,
  EnvNames,
  integerOr,
  jsonOf,
  optionalString,
  queueEnvName,
  requireString,
  tableEnvName,
  urlOf,
} from "./env.ts";
import { ConfigError } from "./errors.ts";
import { parseTenantDirectory } from "./tenant-config.ts";

export type TokenConfig =
  | { readonly kind: "secret"; readonly secretArn: string }
  | {
      readonly kind: "env";
      readonly primary: string;
      readonly secondary: string | undefined;
      readonly subaccounts: Readonly<Record<string, string>>;
    };

export type WebhookConfig = {
  readonly publicBaseUrl: string;
  readonly dedupeTableName: string;
  readonly queueUrls: { readonly consent: string; readonly mirror: string };
  readonly dedupeTtlSeconds: number;
  readonly maxBodyBytes: number;
  readonly tokens: TokenConfig;
  readonly metricsNamespace: string;
  /** Consent table (read-only) for the onParticipantAdd check; unset → pre-events are allowed. */
  readonly consentTableName: string | undefined;
  /** Which tenant a pre-event's number belongs to, for the consent check. */
  readonly tenants: TenantDirectory;
};

export const DefaultDedupeTtlSeconds = 7 * 24 * 60 * 60;
/** Twilio webhooks are a few KB; 256 KiB leaves room and stays far below SQS's 1 MiB message limit. */
export const DefaultMaxBodyBytes = 256 * 1024;

const subaccountTokens = (env: Env): Record<string, string> => {
  const value = jsonOf(env, EnvNames.twilioSubaccountAuthTokens) ?? {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(
      `${EnvNames.twilioSubaccountAuthTokens} must be a JSON object of AccountSid → token`,
    );
  }
  const tokens: Record<string, string> = {};
  for (const [sid, token] of Object.entries(value)) {
    if (!/^AC[0-9a-fA-F]{32}$/.test(sid) || typeof token !== "string" || token === "") {
      throw new ConfigError(
        `${EnvNames.twilioSubaccountAuthTokens} entry ${sid} must map an AC… SID to a token`,
      );
    }
    tokens[sid] = token;
  }
  return tokens;
};

const tokenConfig = (env: Env): TokenConfig => {
  const secretArn = optionalString(env, EnvNames.twilioSecretArn);
  if (secretArn !== undefined) return { kind: "secret", secretArn };
  const primary = optionalString(env, EnvNames.twilioAuthToken);
  if (primary === undefined) {
    throw new ConfigError(
      `set ${EnvNames.twilioSecretArn} (AWS) or ${EnvNames.twilioAuthToken} (local) so signatures can be verified`,
    );
  }
  return {
    kind: "env",
    primary,
    secondary: optionalString(env, EnvNames.twilioAuthTokenSecondary),
    subaccounts: subaccountTokens(env),
  };
};

export const parseWebhookConfig = (env: Env): WebhookConfig => {
  const base = urlOf(env, EnvNames.publicWebhookBaseUrl);
  if (base.search || base.hash) {
    throw new ConfigError(`${EnvNames.publicWebhookBaseUrl} must not contain a query or fragment`);
  }
  return {
    publicBaseUrl: requireString(env, EnvNames.publicWebhookBaseUrl).replace(/\/+$/, ""),
    dedupeTableName: requireString(env, tableEnvName("dedupe")),
    queueUrls: {
      consent: requireString(env, queueEnvName("consent")),
      mirror: requireString(env, queueEnvName("mirror")),
    },
    dedupeTtlSeconds: integerOr(env, EnvNames.dedupeTtlSeconds, DefaultDedupeTtlSeconds, 60),
    maxBodyBytes: integerOr(env, EnvNames.maxBodyBytes, DefaultMaxBodyBytes, 1024),
    tokens: tokenConfig(env),
    metricsNamespace: optionalString(env, EnvNames.metricsNamespace) ?? "TwilioBackbone",
    consentTableName: optionalString(env, tableEnvName("consent")),
    tenants: parseTenantDirectory(env),
  };
};
