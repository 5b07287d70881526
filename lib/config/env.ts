// The only module that reads `process.env`. Everything else receives an `Env` record, so config parsing is
// a pure function that tests can call with a literal object.
import type { QueueName, TableName } from "../resources.ts";
import { ConfigError } from "./errors.ts";

export type Env = Readonly<Record<string, string | undefined>>;

/** A snapshot of the process environment, taken once at cold start by a handler's composition root. */
export const processEnv = (): Env => ({ ...process.env });

/** Variable names that CDK, the local stack and the config parsers share. */
export const EnvNames = {
  publicWebhookBaseUrl: "PUBLIC_WEBHOOK_BASE_URL",
  dedupeTtlSeconds: "DEDUPE_TTL_SECONDS",
  maxBodyBytes: "MAX_BODY_BYTES",
  twilioSecretArn: "TWILIO_SECRET_ARN",
  twilioAuthToken: "TWILIO_AUTH_TOKEN",
  twilioAuthTokenSecondary: "TWILIO_AUTH_TOKEN_SECONDARY",
  twilioSubaccountAuthTokens: "TWILIO_SUBACCOUNT_AUTH_TOKENS",
  twilioAccountSid: "TWILIO_ACCOUNT_SID",
  twilioApiKeySid: "TWILIO_API_KEY_SID",
  twilioApiKeySecret: "TWILIO_API_KEY_SECRET",
  twilioApiBaseUrl: "TWILIO_API_BASE_URL",
  tenantConfig: "TENANT_CONFIG",
  metricsNamespace: "METRICS_NAMESPACE",
} as const;

/** `DEDUPE_TABLE_NAME`, `CONSENT_TABLE_NAME`, … — set by the helper that also grants access. */
export const tableEnvName = (table: TableName): string => `${upperSnake(table)}_TABLE_NAME`;

/** `CONSENT_QUEUE_URL`, `MIRROR_QUEUE_URL` — set by the helper that also grants send. */
export const queueEnvName = (queue: QueueName): string => `${upperSnake(queue)}_QUEUE_URL`;

const upperSnake = (name: string): string => name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();

export const requireString = (env: Env, name: string): string => {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is required but not set`);
  return value;
};

export const optionalString = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim();
  return value ? value : undefined;
};

export const integerOr = (env: Env, name: string, fallback: number, min = 0): number => {
  const raw = optionalString(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min) throw new ConfigError(`${name} must be at least ${min}, got ${value}`);
  return value;
};

export const urlOf = (env: Env, name: string): URL => {
  const raw = requireString(env, name);
  try {
    return new URL(raw);
  } catch (error) {
    throw new ConfigError(`${name} must be an absolute URL, got "${raw}"`, { cause: error });
  }
};

export const jsonOf = (env: Env, name: string): unknown => {
  const raw = optionalString(env, name);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new ConfigError(`${name} must be valid JSON`, { cause: error });
  }
};
