// Multi-tenancy: which tenant a message belongs to, decided by the receiving number or Messaging
// Service (configuration), with a default tenant otherwise. Feature sections of a tenant's settings
// (compliance, mirror, closer) are parsed by their own modules.

export type TenantDirectory = {
  readonly defaultTenant: string;
  /** Receiving address (E.164, `whatsapp:+…`) or Messaging Service SID (MG…) → tenant id. */
  readonly senders: Readonly<Record<string, string>>;
  /** Tenant id → raw settings object, sections parsed by each feature. */
  readonly tenants: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
};

export const DefaultTenantId = "default";

export const emptyDirectory: TenantDirectory = { defaultTenant: DefaultTenantId, senders: {}, tenants: {} };

/** The Messaging Service wins over the number: a service's whole sender pool belongs to one tenant. */
export const tenantFor = (
  directory: TenantDirectory,
  receiver: { readonly to?: string | undefined; readonly messagingServiceSid?: string | undefined },
): string =>
  (receiver.messagingServiceSid && directory.senders[receiver.messagingServiceSid]) ||
  (receiver.to && directory.senders[receiver.to]) ||
  directory.defaultTenant;

/** Tenant ids become parts of keys and unique names: keep them URL-safe and short. */
export const isValidTenantId = (id: string): boolean => /^[A-Za-z0-9-]{1,32}$/.test(id);
