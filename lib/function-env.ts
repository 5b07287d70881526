// The environment each deployed function receives, as a pure function of resolved resource names. The CDK
// binders build every variable from the pieces below (with tokens for names) and the local stack calls
// `functionEnv` with emulator names, so "what runs locally" and "what is deployed" cannot drift.
import { CloserEnvNames } from "./config/closer-config.ts";
import { EnvNames, queueEnvName, tableEnvName } from "./config/env.ts";
import { type FunctionName, Functions, type QueueName, type TableName, tableNames } from "./resources.ts";

export type TableAccess = "read" | "readwrite";

/** CloudWatch namespace for the EMF metrics every function emits, unless the deployer overrides it. */
export const defaultMetricsNamespace = "TwilioBackbone";

/** Deployed bundles ship `.map` files; this makes stack traces in the logs point at the TypeScript source. */
const nodeOptions = "--enable-source-maps";

export interface ResolvedResources {
  readonly tableNames: Readonly<Record<TableName, string>>;
  readonly queueUrls: Readonly<Record<QueueName, string>>;
  readonly twilioSecretArn: string;
  /** Origin Twilio signs against, without a trailing slash, e.g. `https://hooks.example.com`. */
  readonly publicWebhookBaseUrl: string;
  readonly metricsNamespace?: string;
  /** Deployer settings by variable name (see `FunctionSettingNames`); each function gets the ones it reads. */
  readonly settings?: Readonly<Record<string, string>>;
}

/**
 * The non-resource settings each function reads, by variable name. A deployer sets them once (CDK context
 * `functionSettings` / `tenantConfig`, or the environment of `npm start`) and each function receives only
 * the names it reads, so a typo is an error instead of a silently ignored variable.
 */
export const FunctionSettingNames = {
  webhook: [EnvNames.tenantConfig, EnvNames.dedupeTtlSeconds, EnvNames.maxBodyBytes],
  compliance: [EnvNames.tenantConfig],
  mirror: [EnvNames.tenantConfig],
  closer: [EnvNames.tenantConfig, ...Object.values(CloserEnvNames)],
} as const satisfies Record<FunctionName, readonly string[]>;

export const allSettingNames: ReadonlySet<string> = new Set(Object.values(FunctionSettingNames).flat());

export const settingsEnv = (name: FunctionName, settings: Readonly<Record<string, string>> = {}): EnvVars => {
  const accepted: readonly string[] = FunctionSettingNames[name];
  return Object.fromEntries(Object.entries(settings).filter(([key]) => accepted.includes(key)));
};

export type EnvVars = Readonly<Record<string, string>>;

export const runtimeEnv = (metricsNamespace: string = defaultMetricsNamespace): EnvVars => ({
  [EnvNames.metricsNamespace]: metricsNamespace,
  NODE_OPTIONS: nodeOptions,
});

export const tableEnv = (table: TableName, tableName: string): EnvVars => ({
  [tableEnvName(table)]: tableName,
});

export const queueEnv = (queue: QueueName, queueUrl: string): EnvVars => ({
  [queueEnvName(queue)]: queueUrl,
});

export const secretEnv = (secretArn: string): EnvVars => ({ [EnvNames.twilioSecretArn]: secretArn });

export const publicWebhookEnv = (baseUrl: string): EnvVars => ({ [EnvNames.publicWebhookBaseUrl]: baseUrl });

/** The tables a function may touch and how, in `Tables` order. */
export const functionTables = (
  name: FunctionName,
): ReadonlyArray<{ table: TableName; access: TableAccess }> => {
  const declared: Partial<Record<TableName, TableAccess>> = Functions[name].tables;
  return tableNames.flatMap((table) => {
    const access = declared[table];
    return access ? [{ table, access }] : [];
  });
};

/** The queues a function may send to. */
export const functionSendsTo = (name: FunctionName): readonly QueueName[] => Functions[name].sendsTo;

/** Only the HTTP-triggered function verifies Twilio signatures, so only it needs the public URL. */
export const receivesWebhooks = (name: FunctionName): boolean => Functions[name].trigger.kind === "http";

const merge = (parts: readonly EnvVars[]): EnvVars =>
  Object.fromEntries(parts.flatMap((part) => Object.entries(part)));

/** Exactly the variables CDK sets on `name`, given resolved names. */
export const functionEnv = (name: FunctionName, resources: ResolvedResources): EnvVars =>
  merge([
    runtimeEnv(resources.metricsNamespace),
    secretEnv(resources.twilioSecretArn),
    ...functionTables(name).map(({ table }) => tableEnv(table, resources.tableNames[table])),
    ...functionSendsTo(name).map((queue) => queueEnv(queue, resources.queueUrls[queue])),
    ...(receivesWebhooks(name) ? [publicWebhookEnv(resources.publicWebhookBaseUrl)] : []),
    settingsEnv(name, resources.settings),
  ]);
