// `.local/stack.json`: how tools find the running local stack (written once everything is up, removed on
// shutdown). `npm run simulate` reads it to sign webhooks with the stack's auth token over its public URL.
// It holds the auth token in use, so it is written owner-only and lives in the git-ignored `.local/`.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { StackFileError } from "./errors.ts";

export const DefaultStackFile = ".local/stack.json";

export type StackInfo = {
  /** Where the local API Gateway listens, e.g. `http://127.0.0.1:3000`. */
  readonly api: string;
  /** The origin Twilio signs against: the api URL, or a tunnel's (PUBLIC_WEBHOOK_BASE_URL). */
  readonly publicWebhookBaseUrl: string;
  readonly twilio: {
    readonly accountSid: string;
    /** Signs webhooks (the emulator's fake token, or the real account's token). */
    readonly authToken: string;
    /** The Twilio emulator's base URL; null when the functions call real Twilio. */
    readonly apiBaseUrl: string | null;
    /** Numbers the emulator owns (empty with real Twilio). */
    readonly phoneNumbers: readonly string[];
  };
  readonly aws: {
    readonly region: string;
    readonly dynamodbEndpoint: string;
    readonly sqsEndpoint: string;
    readonly tables: Readonly<Record<string, string>>;
    readonly queues: Readonly<Record<string, string>>;
    readonly deadLetterQueues: Readonly<Record<string, string>>;
  };
  readonly functions: Readonly<
    Record<
      string,
      { readonly env: Readonly<Record<string, string>>; readonly bundle: string; readonly available: boolean }
    >
  >;
};

export const writeStackFile = async (path: string, info: StackInfo): Promise<void> => {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
};

export const removeStackFile = (path: string): Promise<void> => rm(path, { force: true });

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** What a client of the running stack needs from the file, checked. */
export type StackEndpoint = {
  readonly api: string;
  readonly publicWebhookBaseUrl: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly phoneNumbers: readonly string[];
  /** The stack runs the Twilio emulator (not real Twilio). */
  readonly emulated: boolean;
};

export const parseStackEndpoint = (text: string, path: string): StackEndpoint => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new StackFileError(`${path} is not valid JSON`, { cause: error });
  }
  if (!isRecord(parsed) || !isRecord(parsed.twilio))
    throw new StackFileError(`${path} has no "twilio" section`);
  const { api, publicWebhookBaseUrl, twilio } = parsed;
  const { accountSid, authToken, phoneNumbers, apiBaseUrl } = twilio;
  if (typeof api !== "string" || typeof publicWebhookBaseUrl !== "string") {
    throw new StackFileError(`${path} lacks "api" or "publicWebhookBaseUrl"`);
  }
  if (typeof accountSid !== "string" || typeof authToken !== "string") {
    throw new StackFileError(`${path} lacks twilio.accountSid or twilio.authToken`);
  }
  const numbers = Array.isArray(phoneNumbers)
    ? phoneNumbers.filter((n): n is string => typeof n === "string")
    : [];
  return {
    api,
    publicWebhookBaseUrl,
    accountSid,
    authToken,
    phoneNumbers: numbers,
    emulated: typeof apiBaseUrl === "string",
  };
};

export const readStackEndpoint = async (path: string): Promise<StackEndpoint> => {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new StackFileError(`${path} not found: start the local stack first (npm start)`, { cause: error });
  }
  return parseStackEndpoint(text, path);
};
