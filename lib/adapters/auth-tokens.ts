// AuthTokenSource implementations: static tokens from the environment (local runs) and the Twilio
// credentials secret in AWS Secrets Manager (cached; re-read on rotation). The Secrets Manager client is
// imported lazily so bundles running on env tokens never load it.
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { AuthTokenSource } from "../app/ports.ts";
import { ConfigError } from "../config/errors.ts";

export type TwilioTokens = {
  readonly primary: string;
  readonly secondary?: string | undefined;
  /** Per-subaccount auth tokens, keyed by AccountSid (AC…): subaccounts sign with their own token. */
  readonly subaccounts?: Readonly<Record<string, string>> | undefined;
};

const tokensFrom = (tokens: TwilioTokens, accountSid: string | undefined): readonly string[] => {
  const own = accountSid === undefined ? undefined : tokens.subaccounts?.[accountSid];
  return [own, tokens.primary, tokens.secondary].filter((token): token is string => Boolean(token));
};

export const staticAuthTokens = (tokens: TwilioTokens): AuthTokenSource => ({
  tokensFor: async (accountSid) => tokensFrom(tokens, accountSid),
  refresh: async () => false,
});

/** The JSON stored in the Twilio credentials secret (see README "Secrets"). */
export type TwilioSecret = TwilioTokens & {
  readonly accountSid?: string | undefined;
  readonly apiKeySid?: string | undefined;
  readonly apiKeySecret?: string | undefined;
};

const stringField = (record: Record<string, unknown>, name: string): string | undefined => {
  const value = record[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new ConfigError(`Twilio secret field ${name} must be a string`);
  return value;
};

export const parseTwilioSecret = (text: string): TwilioSecret => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("Twilio secret is not valid JSON", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError("Twilio secret must be a JSON object");
  }
  const record: Record<string, unknown> = { ...parsed };
  const primary = stringField(record, "authToken");
  if (!primary) throw new ConfigError("Twilio secret has no authToken");
  const subaccounts = record.subaccountAuthTokens;
  if (subaccounts !== undefined && (typeof subaccounts !== "object" || subaccounts === null)) {
    throw new ConfigError("Twilio secret field subaccountAuthTokens must be an object");
  }
  const subaccountTokens: Record<string, string> = {};
  for (const [sid, token] of Object.entries(subaccounts ?? {})) {
    if (typeof token !== "string") throw new ConfigError(`subaccount token for ${sid} must be a string`);
    subaccountTokens[sid] = token;
  }
  return {
    primary,
    secondary: stringField(record, "authTokenSecondary"),
    subaccounts: subaccountTokens,
    accountSid: stringField(record, "accountSid"),
    apiKeySid: stringField(record, "apiKeySid"),
    apiKeySecret: stringField(record, "apiKeySecret"),
  };
};

export type SecretReader = () => Promise<string>;

/** Reads the secret string with a lazily imported Secrets Manager client. */
export const secretsManagerReader = (secretArn: string): SecretReader => {
  let client: SecretsManagerClient | undefined;
  return async () => {
    const sdk = await import("@aws-sdk/client-secrets-manager");
    client ??= new sdk.SecretsManagerClient({});
    const result = await client.send(new sdk.GetSecretValueCommand({ SecretId: secretArn }));
    if (!result.SecretString) throw new ConfigError(`secret ${secretArn} has no string value`);
    return result.SecretString;
  };
};

export type CachedSecretOptions = {
  readonly read: SecretReader;
  readonly now: () => number;
  /** Re-read after this long even without a failed verification (picks up promoted tokens). */
  readonly maxAgeMs: number;
  /** A failed verification may force a re-read at most this often (bad signatures are cheap to send). */
  readonly minRefreshIntervalMs: number;
};

/** Caches the parsed secret; concurrent callers share one in-flight read. */
export const cachedTwilioSecret = (options: CachedSecretOptions) => {
  let current: { secret: TwilioSecret; readAt: number; raw: string } | undefined;
  let inFlight: Promise<boolean> | undefined;

  const load = (): Promise<boolean> => {
    inFlight ??= (async () => {
      try {
        const raw = await options.read();
        const changed = raw !== current?.raw;
        current = { secret: parseTwilioSecret(raw), readAt: options.now(), raw };
        return changed;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const get = async (): Promise<TwilioSecret> => {
    if (current === undefined || options.now() - current.readAt > options.maxAgeMs) await load();
    if (current === undefined) throw new ConfigError("Twilio secret could not be loaded");
    return current.secret;
  };

  const refresh = async (): Promise<boolean> => {
    if (current !== undefined && options.now() - current.readAt < options.minRefreshIntervalMs) return false;
    return load();
  };

  return { get, refresh };
};

export const secretAuthTokens = (secret: ReturnType<typeof cachedTwilioSecret>): AuthTokenSource => ({
  tokensFor: async (accountSid) => tokensFrom(await secret.get(), accountSid),
  refresh: () => secret.refresh(),
});
