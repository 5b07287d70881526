// Deployment settings read from CDK context (`cdk.json` or `cdk deploy -c key=value`), parsed once into a
// typed record so constructs never see raw context values.
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { EnvNames } from "../lib/config/env.ts";
import { allSettingNames, defaultMetricsNamespace } from "../lib/function-env.ts";
import { ContextError } from "./errors.ts";

export const ContextKeys = {
  stackPrefix: "stackPrefix",
  domainName: "domainName",
  certificateArn: "certificateArn",
  twilioSecretArn: "twilioSecretArn",
  alarmEmail: "alarmEmail",
  apiRateLimit: "apiRateLimit",
  apiBurstLimit: "apiBurstLimit",
  logRetentionDays: "logRetentionDays",
  metricsNamespace: "metricsNamespace",
  functionSettings: "functionSettings",
  tenantConfig: "tenantConfig",
} as const;

export interface CustomDomain {
  readonly domainName: string;
  readonly certificateArn: string;
}

export interface ApiThrottle {
  /** Steady-state requests per second across all webhook routes. */
  readonly rateLimit: number;
  readonly burstLimit: number;
}

export interface BackboneSettings {
  readonly stackPrefix: string;
  readonly twilioSecretArn?: string;
  readonly customDomain?: CustomDomain;
  readonly alarmEmail?: string;
  readonly apiThrottle: ApiThrottle;
  readonly logRetention: RetentionDays;
  readonly metricsNamespace: string;
  /** Function settings by env variable name (`TENANT_CONFIG`, `CLOSER_IDLE_MINUTES`, …). */
  readonly functionSettings: Readonly<Record<string, string>>;
}

export const defaultSettings: BackboneSettings = {
  stackPrefix: "TwilioBackbone",
  // Twilio retries Messaging webhooks and Conversations may burst on bulk imports; the account quota
  // (10,000 rps shared by all APIs in the Region) stays far above these.
  apiThrottle: { rateLimit: 500, burstLimit: 1000 },
  logRetention: RetentionDays.ONE_MONTH,
  metricsNamespace: defaultMetricsNamespace,
  functionSettings: {},
};

/** Lambda allows 4 KB of environment in total; tenant config beyond this belongs in a parameter store. */
const maxTenantConfigBytes = 2048;

const functionSettings = (read: ReadContext): Record<string, string> => {
  const raw = read(ContextKeys.functionSettings) ?? {};
  const parsed = typeof raw === "string" ? JSON.parse(raw) : raw;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ContextError(`context "functionSettings" must be an object of VARIABLE: value`);
  }
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!allSettingNames.has(name)) {
      throw new ContextError(
        `context "functionSettings" has unknown setting "${name}"; known: ${[...allSettingNames].join(", ")}`,
      );
    }
    if (!["string", "number", "boolean"].includes(typeof value)) {
      throw new ContextError(`context "functionSettings.${name}" must be a string, number or boolean`);
    }
    settings[name] = String(value);
  }
  const tenants = read(ContextKeys.tenantConfig);
  if (tenants !== undefined && tenants !== null && tenants !== "") {
    const json = typeof tenants === "string" ? tenants : JSON.stringify(tenants);
    if (Buffer.byteLength(json) > maxTenantConfigBytes) {
      throw new ContextError(
        `context "tenantConfig" is ${Buffer.byteLength(json)} bytes; Lambda environments are limited to 4 KB in total, keep it under ${maxTenantConfigBytes}`,
      );
    }
    settings[EnvNames.tenantConfig] = json;
  }
  return settings;
};

type ReadContext = (key: string) => unknown;

const optionalText = (read: ReadContext, key: string): string | undefined => {
  const value = read(key);
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string")
    throw new ContextError(`context "${key}" must be a string, got ${typeof value}`);
  return value.trim() || undefined;
};

const positiveInteger = (read: ReadContext, key: string, fallback: number): number => {
  const value = read(key);
  if (value === undefined || value === null || value === "") return fallback;
  const parsed = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    throw new ContextError(`context "${key}" must be a positive whole number, got "${String(value)}"`);
  }
  return parsed;
};

const retention = (read: ReadContext, key: string, fallback: RetentionDays): RetentionDays => {
  const days = positiveInteger(read, key, fallback);
  const match = Object.values(RetentionDays).find((value): value is RetentionDays => value === days);
  if (match === undefined) {
    throw new ContextError(
      `context "${key}" must be a CloudWatch Logs retention period in days, got ${days}`,
    );
  }
  return match;
};

const secretArnPattern = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const certificateArnPattern = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

const customDomain = (read: ReadContext): CustomDomain | undefined => {
  const domainName = optionalText(read, ContextKeys.domainName)?.toLowerCase();
  const certificateArn = optionalText(read, ContextKeys.certificateArn);
  if (domainName === undefined && certificateArn === undefined) return undefined;
  if (domainName === undefined || certificateArn === undefined) {
    throw new ContextError(`context "domainName" and "certificateArn" must be set together`);
  }
  if (!domainPattern.test(domainName))
    throw new ContextError(`context "domainName" is not a host name: "${domainName}"`);
  if (!certificateArnPattern.test(certificateArn)) {
    throw new ContextError(`context "certificateArn" is not an ACM certificate ARN: "${certificateArn}"`);
  }
  return { domainName, certificateArn };
};

/** Parses every setting from `read` (e.g. `(key) => app.node.tryGetContext(key)`), applying defaults. */
export const settingsFromContext = (read: ReadContext): BackboneSettings => {
  const twilioSecretArn = optionalText(read, ContextKeys.twilioSecretArn);
  if (twilioSecretArn !== undefined && !secretArnPattern.test(twilioSecretArn)) {
    throw new ContextError(`context "twilioSecretArn" is not a Secrets Manager ARN: "${twilioSecretArn}"`);
  }
  const rateLimit = positiveInteger(read, ContextKeys.apiRateLimit, defaultSettings.apiThrottle.rateLimit);
  const burstLimit = positiveInteger(read, ContextKeys.apiBurstLimit, defaultSettings.apiThrottle.burstLimit);
  return {
    stackPrefix: optionalText(read, ContextKeys.stackPrefix) ?? defaultSettings.stackPrefix,
    twilioSecretArn,
    customDomain: customDomain(read),
    alarmEmail: optionalText(read, ContextKeys.alarmEmail),
    apiThrottle: { rateLimit, burstLimit },
    logRetention: retention(read, ContextKeys.logRetentionDays, defaultSettings.logRetention),
    metricsNamespace: optionalText(read, ContextKeys.metricsNamespace) ?? defaultSettings.metricsNamespace,
    functionSettings: functionSettings(read),
  };
};
