// Builds the real twilio SDK client for worker functions. Locally only the base URL changes (to the
// Twilio emulator); everything else in the SDK stays real. Failures are normalised to TwilioApiError
// so the application layer can classify them by code.
import BaseTwilio from "twilio/lib/base/BaseTwilio.js";
import Api from "twilio/lib/rest/Api.js";
import Conversations from "twilio/lib/rest/Conversations.js";
import type { TwilioRestConfig } from "../config/twilio-config.ts";
import { TwilioApiError } from "../domain/twilio-errors.ts";
import { cachedTwilioSecret, secretsManagerReader } from "./auth-tokens.ts";

/**
 * The two Twilio domains this system calls, built on the SDK's own base client. `twilio()` would give
 * the same objects but its class statically requires every Twilio product (3.8 MB bundled vs 1.2 MB),
 * which every worker would load at cold start.
 */
export type TwilioClient = {
  readonly conversations: Conversations;
  readonly api: Api;
  /** Same shortcut as `twilio().messages`: the account's Messages list (2010-04-01). */
  readonly messages: Api["v2010"]["account"]["messages"];
};

const build = (
  username: string,
  password: string,
  accountSid: string,
  apiBaseUrl: string | undefined,
): TwilioClient => {
  // autoRetry stays off: callers retry by failure class with their own budget (see lib/app/retry.ts).
  const base = new BaseTwilio.Client(username, password, { accountSid, autoRetry: false, timeout: 10_000 });
  const conversations = new Conversations(base);
  const api = new Api(base);
  if (apiBaseUrl !== undefined) {
    conversations.baseUrl = apiBaseUrl;
    api.baseUrl = apiBaseUrl;
  }
  return { conversations, api, messages: api.v2010.account.messages };
};

/** Returns a provider: the client is created on first use (the secret is read once, then cached). */
export const twilioClientProvider = (config: TwilioRestConfig): (() => Promise<TwilioClient>) => {
  let client: Promise<TwilioClient> | undefined;
  const { credentials, apiBaseUrl } = config;
  return () => {
    if (credentials.kind === "env") {
      client ??= Promise.resolve(
        build(credentials.username, credentials.password, credentials.accountSid, apiBaseUrl),
      );
      return client;
    }
    client ??= (async () => {
      const secret = await cachedTwilioSecret({
        read: secretsManagerReader(credentials.secretArn),
        now: Date.now,
        maxAgeMs: Number.POSITIVE_INFINITY,
        minRefreshIntervalMs: 0,
      }).get();
      const accountSid = secret.accountSid;
      if (accountSid === undefined)
        throw new TwilioApiError("Twilio secret has no accountSid", { code: 20003 });
      const username = secret.apiKeySid ?? accountSid;
      const password = secret.apiKeySid !== undefined ? secret.apiKeySecret : secret.primary;
      if (password === undefined)
        throw new TwilioApiError("Twilio secret has no apiKeySecret", { code: 20003 });
      return build(username, password, accountSid, apiBaseUrl);
    })();
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
};

type RestExceptionLike = { status?: unknown; code?: unknown; message?: unknown };

/** Wraps an SDK call so every failure surfaces as TwilioApiError (status/code undefined = network). */
export const callTwilio = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    if (error instanceof TwilioApiError) throw error;
    const details: RestExceptionLike = typeof error === "object" && error !== null ? error : {};
    const status = typeof details.status === "number" ? details.status : undefined;
    const code = typeof details.code === "number" ? details.code : undefined;
    const message = typeof details.message === "string" ? details.message : String(error);
    throw new TwilioApiError(`${operation} failed: ${message}`, { status, code, cause: error });
  }
};
