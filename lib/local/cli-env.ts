// Reads the developer's environment for `npm start`: ports, the public webhook URL and which Twilio to use.
// Only the CLIs call this; the stack itself takes plain options.
import type { Env } from "../config/env.ts";
import { StackConfigError } from "./errors.ts";
import type { TwilioSettings } from "./stack.ts";

export const StartEnvNames = {
  port: "PORT",
  twilioEmulatorPort: "TWILIO_EMULATOR_PORT",
  publicWebhookBaseUrl: "PUBLIC_WEBHOOK_BASE_URL",
  accountSid: "TWILIO_ACCOUNT_SID",
  authToken: "TWILIO_AUTH_TOKEN",
  apiKeySid: "TWILIO_API_KEY_SID",
  apiKeySecret: "TWILIO_API_KEY_SECRET",
} as const;

export const DefaultPorts = { api: 3000, twilioEmulator: 3001 } as const;

const value = (env: Env, name: string): string | undefined => {
  const text = env[name]?.trim();
  return text ? text : undefined;
};

export const portFrom = (env: Env, name: string, fallback: number): number => {
  const text = value(env, name);
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535)
    throw new StackConfigError(`${name} must be a port number, got "${text}"`);
  return port;
};

/**
 * Real Twilio when an account SID and credentials are set; the emulator otherwise. Real Twilio signs
 * webhooks with the account's auth token, so that token is required even when the workers use an API key.
 */
export const twilioSettingsFrom = (env: Env): TwilioSettings => {
  const names = StartEnvNames;
  const accountSid = value(env, names.accountSid);
  const authToken = value(env, names.authToken);
  const apiKeySid = value(env, names.apiKeySid);
  const apiKeySecret = value(env, names.apiKeySecret);
  if (accountSid === undefined) {
    if (authToken !== undefined || apiKeySid !== undefined) {
      throw new StackConfigError(
        `${names.authToken}/${names.apiKeySid} are set without ${names.accountSid}: set it to use real Twilio, or unset them to use the emulator`,
      );
    }
    return {
      mode: "emulator",
      port: portFrom(env, names.twilioEmulatorPort, DefaultPorts.twilioEmulator),
      portVariable: names.twilioEmulatorPort,
    };
  }
  if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
    throw new StackConfigError(
      `${names.accountSid} must be an account SID (AC + 32 hex), got "${accountSid}"`,
    );
  }
  if ((apiKeySid === undefined) !== (apiKeySecret === undefined)) {
    throw new StackConfigError(`set both ${names.apiKeySid} and ${names.apiKeySecret}, or neither`);
  }
  if (authToken === undefined) {
    throw new StackConfigError(
      `${names.accountSid} is set, so the stack uses real Twilio, which signs webhooks with the account's auth token: set ${names.authToken} too (an API key cannot verify signatures)`,
    );
  }
  return {
    mode: "real",
    accountSid,
    authToken,
    ...(apiKeySid === undefined || apiKeySecret === undefined ? {} : { apiKeySid, apiKeySecret }),
  };
};
