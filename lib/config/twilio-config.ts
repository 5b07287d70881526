// Twilio REST configuration for the worker functions: credentials from the Secrets Manager secret (AWS)
// or from env (local), and an optional API base URL (the local Twilio emulator). Unset → real Twilio.

import { type Env, EnvNames, optionalString } from "./env.ts";
import { ConfigError } from "./errors.ts";

export type TwilioRestConfig = {
  readonly apiBaseUrl: string | undefined;
  readonly credentials:
    | { readonly kind: "secret"; readonly secretArn: string }
    | {
        readonly kind: "env";
        readonly accountSid: string;
        /** API key SID (SK…) or the account SID when authenticating with the auth token. */
        readonly username: string;
        readonly password: string;
      };
};

export const parseTwilioRestConfig = (env: Env): TwilioRestConfig => {
  const apiBaseUrl = optionalString(env, EnvNames.twilioApiBaseUrl)?.replace(/\/+$/, "");
  const secretArn = optionalString(env, EnvNames.twilioSecretArn);
  if (secretArn !== undefined) return { apiBaseUrl, credentials: { kind: "secret", secretArn } };
  const accountSid = optionalString(env, EnvNames.twilioAccountSid);
  if (accountSid === undefined || !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
    throw new ConfigError(
      `set ${EnvNames.twilioSecretArn} (AWS) or ${EnvNames.twilioAccountSid} (AC…) with an API key or auth token`,
    );
  }
  const keySid = optionalString(env, EnvNames.twilioApiKeySid);
  const keySecret = optionalString(env, EnvNames.twilioApiKeySecret);
  if (keySid !== undefined && keySecret !== undefined) {
    return { apiBaseUrl, credentials: { kind: "env", accountSid, username: keySid, password: keySecret } };
  }
  const authToken = optionalString(env, EnvNames.twilioAuthToken);
  if (authToken === undefined) {
    throw new ConfigError(
      `set ${EnvNames.twilioApiKeySid} + ${EnvNames.twilioApiKeySecret}, or ${EnvNames.twilioAuthToken}`,
    );
  }
  return { apiBaseUrl, credentials: { kind: "env", accountSid, username: accountSid, password: authToken } };
};
