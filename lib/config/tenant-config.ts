// Parses TENANT_CONFIG (JSON) into a TenantDirectory. Absent → a single default tenant.
import { DefaultTenantId, isValidTenantId, type TenantDirectory } from "../domain/tenants.ts";
import { type Env, EnvNames, jsonOf } from "./env.ts";
import { ConfigError } from "./errors.ts";

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export const parseTenantDirectory = (env: Env): TenantDirectory => {
  const raw = jsonOf(env, EnvNames.tenantConfig) ?? {};
  if (!isRecord(raw)) throw new ConfigError(`${EnvNames.tenantConfig} must be a JSON object`);
  const defaultTenant = raw.defaultTenant ?? DefaultTenantId;
  if (typeof defaultTenant !== "string" || !isValidTenantId(defaultTenant)) {
    throw new ConfigError(`${EnvNames.tenantConfig}.defaultTenant must match [A-Za-z0-9-]{1,32}`);
  }
  const senders: Record<string, string> = {};
  for (const [sender, tenant] of Object.entries(isRecord(raw.senders) ? raw.senders : {})) {
    if (typeof tenant !== "string" || !isValidTenantId(tenant)) {
      throw new ConfigError(`${EnvNames.tenantConfig}.senders["${sender}"] must be a tenant id`);
    }
    senders[sender] = tenant;
  }
  const tenants: Record<string, Record<string, unknown>> = {};
  for (const [tenant, settings] of Object.entries(isRecord(raw.tenants) ? raw.tenants : {})) {
    if (!isValidTenantId(tenant) || !isRecord(settings)) {
      throw new ConfigError(
        `${EnvNames.tenantConfig}.tenants["${tenant}"] must be an object under a valid id`,
      );
    }
    tenants[tenant] = settings;
  }
  return { defaultTenant, senders, tenants };
};
