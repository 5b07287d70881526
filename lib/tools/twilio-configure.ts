// Points a Twilio account at a deployed backbone: the Conversations webhooks (global or one service),
// the Messaging inbound URL of chosen phone numbers, and the inbound and status URLs of chosen Messaging
// Services. Idempotent: it fetches each setting first, changes only what differs and prints what it
// changed (or "unchanged"). URLs come from `cdk deploy --outputs-file` or from flags, credentials from
// the environment.
//
//   npm run twilio:configure -- --outputs cdk-outputs.json --messaging-service MG… [--dry-run]
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import twilio from "twilio";
import { webhookUrlOutputKey } from "../../infra/stack-outputs.ts";
import { type Env, EnvNames, processEnv } from "../config/env.ts";

export type TwilioClient = ReturnType<typeof twilio>;

/** Pre-action hooks the webhook answers synchronously (consent gate, conversation admission). */
export const PreWebhookFilters = ["onParticipantAdd", "onMessageAdd", "onConversationAdd"] as const;

/** Post-action events the backbone mirrors into its conversation registry. */
export const PostWebhookFilters = [
  "onMessageAdded",
  "onParticipantAdded",
  "onParticipantRemoved",
  "onConversationAdded",
  "onConversationRemoved",
  "onConversationStateUpdated",
  "onConversationUpdated",
  "onDeliveryUpdated",
] as const;

export const ConversationsFilters: readonly string[] = [...PreWebhookFilters, ...PostWebhookFilters];

/** A bad command line, plan or environment: fixable by the operator before any call. */
export class TwilioConfigureError extends Error {
  override name = "TwilioConfigureError";
}

/** A Twilio API call failed; the message names the target and what Twilio answered. */
export class TwilioCallError extends Error {
  override name = "TwilioCallError";
}

const messagingServiceSidPattern = /^MG[0-9a-fA-F]{32}$/;

export interface ConfigurePlan {
  /** Receives both pre- and post-action Conversations webhooks. */
  readonly conversationsUrl: string;
  /** Messaging inbound URL for `phoneNumbers` and `messagingServiceSids`; required when any are given. */
  readonly messagingInboundUrl?: string;
  /** Messaging status-callback URL for `messagingServiceSids`; required when any are given. */
  readonly messagingStatusUrl?: string;
  /** Configure this Conversation Service (`IS…`) instead of the account-wide (global) webhooks. */
  readonly serviceSid?: string;
  /** E.164 numbers whose SmsUrl should point at the backbone. */
  readonly phoneNumbers: readonly string[];
  /** Messaging Services (`MG…`) whose InboundRequestUrl, InboundMethod and StatusCallback should be set. */
  readonly messagingServiceSids?: readonly string[];
  readonly dryRun: boolean;
}

export interface FieldChange {
  readonly field: string;
  readonly from: string;
  readonly to: string;
}

export interface TargetResult {
  /** e.g. `conversations webhooks (global)`, `phone number +15551234567 (PN…)`. */
  readonly target: string;
  readonly changes: readonly FieldChange[];
}

const show = (value: string | null | undefined): string => (value ? `"${value}"` : "(unset)");

const differs = (current: string | null | undefined, desired: string): boolean => (current ?? "") !== desired;

const diff = (field: string, current: string | null | undefined, desired: string): FieldChange[] =>
  differs(current, desired) ? [{ field, from: show(current), to: show(desired) }] : [];

const filterDiff = (
  current: readonly string[] | null | undefined,
  desired: readonly string[],
): FieldChange[] => {
  const have = new Set(current ?? []);
  const want = new Set(desired);
  const added = desired.filter((filter) => !have.has(filter));
  const removed = [...have].filter((filter) => !want.has(filter));
  if (added.length === 0 && removed.length === 0) return [];
  const parts = [...added.map((f) => `+${f}`), ...removed.map((f) => `-${f}`)];
  return [{ field: "Filters", from: [...have].join(",") || "(none)", to: parts.join(" ") }];
};

interface WebhookSettings {
  readonly preWebhookUrl: string | null;
  readonly postWebhookUrl: string | null;
  readonly method: string | null;
  readonly filters: readonly string[] | null;
}

/** The global and the service-scoped webhook resources differ in type but not in the fields used here. */
interface WebhookConfiguration {
  fetch(): Promise<WebhookSettings>;
  update(settings: {
    preWebhookUrl: string;
    postWebhookUrl: string;
    method: string;
    filters: string[];
  }): Promise<unknown>;
}

const webhookConfiguration = (client: TwilioClient, serviceSid: string | undefined): WebhookConfiguration => {
  if (serviceSid) {
    const context = client.conversations.v1.services(serviceSid).configuration.webhooks();
    return { fetch: () => context.fetch(), update: (settings) => context.update(settings) };
  }
  const context = client.conversations.v1.configuration.webhooks();
  return { fetch: () => context.fetch(), update: (settings) => context.update(settings) };
};

const configureConversations = async (client: TwilioClient, plan: ConfigurePlan): Promise<TargetResult> => {
  const desired = {
    preWebhookUrl: plan.conversationsUrl,
    postWebhookUrl: plan.conversationsUrl,
    method: "POST",
    filters: [...ConversationsFilters],
  };
  const context = webhookConfiguration(client, plan.serviceSid);
  const target = `conversations webhooks (${plan.serviceSid ? `service ${plan.serviceSid}` : "global"})`;
  const current = await context.fetch();
  const changes = [
    ...diff("PreWebhookUrl", current.preWebhookUrl, desired.preWebhookUrl),
    ...diff("PostWebhookUrl", current.postWebhookUrl, desired.postWebhookUrl),
    ...diff("Method", current.method?.toUpperCase(), desired.method),
    ...filterDiff(current.filters, desired.filters),
  ];
  if (changes.length > 0 && !plan.dryRun) await context.update(desired);
  return { target, changes };
};

type IncomingNumber = {
  readonly sid: string;
  readonly phoneNumber: string;
  smsUrl: string;
  smsMethod: string;
};

const findPhoneNumber = async (client: TwilioClient, phoneNumber: string): Promise<IncomingNumber> => {
  const matches = await client.api.v2010.account.incomingPhoneNumbers.list({ phoneNumber, limit: 20 });
  const number = matches.find((candidate) => candidate.phoneNumber === phoneNumber);
  if (number === undefined) {
    throw new TwilioConfigureError(
      `phone number ${phoneNumber} is not an incoming phone number of this account`,
    );
  }
  return number;
};

const configurePhoneNumber = async (
  client: TwilioClient,
  number: IncomingNumber,
  inboundUrl: string,
  dryRun: boolean,
): Promise<TargetResult> => {
  const changes = [
    ...diff("SmsUrl", number.smsUrl, inboundUrl),
    ...diff("SmsMethod", number.smsMethod, "POST"),
  ];
  if (changes.length > 0 && !dryRun) {
    await client.api.v2010.account
      .incomingPhoneNumbers(number.sid)
      .update({ smsUrl: inboundUrl, smsMethod: "POST" });
  }
  return { target: `phone number ${number.phoneNumber} (${number.sid})`, changes };
};

export interface MessagingServiceSettings {
  readonly inboundRequestUrl: string | null;
  readonly inboundMethod: string | null;
  readonly statusCallback: string | null;
}

/** The slice of `messaging.twilio.com/v1/Services/{MG…}` this tool reads and writes. */
export interface MessagingServicePort {
  fetch(serviceSid: string): Promise<MessagingServiceSettings>;
  /** Sends only the fields given, so a setting that already matches is never rewritten. */
  update(serviceSid: string, changes: Partial<MessagingServiceSettings>): Promise<unknown>;
}

export const messagingServicePort = (client: TwilioClient): MessagingServicePort => ({
  fetch: (serviceSid) => client.messaging.v1.services(serviceSid).fetch(),
  update: (serviceSid, { inboundRequestUrl, inboundMethod, statusCallback }) =>
    client.messaging.v1.services(serviceSid).update({
      ...(inboundRequestUrl == null ? {} : { inboundRequestUrl }),
      ...(inboundMethod == null ? {} : { inboundMethod }),
      ...(statusCallback == null ? {} : { statusCallback }),
    }),
});

/** "HTTP 404, Twilio error 20404: The requested resource … was not found" from a RestException. */
const describeFailure = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  const status = "status" in error && typeof error.status === "number" ? `HTTP ${error.status}` : undefined;
  const code = "code" in error && typeof error.code === "number" ? `Twilio error ${error.code}` : undefined;
  const prefix = [status, code].filter((part) => part !== undefined).join(", ");
  return prefix ? `${prefix}: ${error.message}` : error.message;
};

const callTwilio = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
  try {
    return await call();
  } catch (error) {
    throw new TwilioCallError(`${what} failed (${describeFailure(error)})`, { cause: error });
  }
};

interface MessagingServiceTarget {
  readonly sid: string;
  readonly current: MessagingServiceSettings;
}

interface MessagingUrls {
  readonly inboundUrl: string;
  readonly statusUrl: string;
}

const messagingUrls = (plan: ConfigurePlan): MessagingUrls | undefined => {
  const sids = plan.messagingServiceSids ?? [];
  if (sids.length === 0) return undefined;
  for (const sid of sids) {
    if (!messagingServiceSidPattern.test(sid)) {
      throw new TwilioConfigureError(
        `--messaging-service must be a Messaging Service SID (MG…), got "${sid}"`,
      );
    }
  }
  if (!plan.messagingInboundUrl || !plan.messagingStatusUrl) {
    throw new TwilioConfigureError(
      "--messaging-service needs the messaging inbound and status URLs (outputs file or flags)",
    );
  }
  return { inboundUrl: plan.messagingInboundUrl, statusUrl: plan.messagingStatusUrl };
};

const fetchMessagingServices = (
  port: MessagingServicePort,
  sids: readonly string[],
): Promise<MessagingServiceTarget[]> =>
  Promise.all(
    sids.map(async (sid) => ({
      sid,
      current: await callTwilio(`fetching messaging service ${sid}`, () => port.fetch(sid)),
    })),
  );

const applyMessagingService = async (
  port: MessagingServicePort,
  { sid, current }: MessagingServiceTarget,
  urls: MessagingUrls,
  dryRun: boolean,
): Promise<TargetResult> => {
  const currentMethod = current.inboundMethod?.toUpperCase();
  const changes = [
    ...diff("InboundRequestUrl", current.inboundRequestUrl, urls.inboundUrl),
    ...diff("InboundMethod", currentMethod, "POST"),
    ...diff("StatusCallback", current.statusCallback, urls.statusUrl),
  ];
  const changed: Partial<MessagingServiceSettings> = {
    ...(differs(current.inboundRequestUrl, urls.inboundUrl) ? { inboundRequestUrl: urls.inboundUrl } : {}),
    ...(differs(currentMethod, "POST") ? { inboundMethod: "POST" } : {}),
    ...(differs(current.statusCallback, urls.statusUrl) ? { statusCallback: urls.statusUrl } : {}),
  };
  if (changes.length > 0 && !dryRun) {
    await callTwilio(`updating messaging service ${sid}`, () => port.update(sid, changed));
  }
  return { target: `messaging service ${sid}`, changes };
};

/** The Messaging-Service part of `configureTwilio` on its own: every service is fetched before any write. */
export const configureMessagingServices = async (
  port: MessagingServicePort,
  plan: ConfigurePlan,
): Promise<TargetResult[]> => {
  const urls = messagingUrls(plan);
  if (!urls) return [];
  const services = await fetchMessagingServices(port, plan.messagingServiceSids ?? []);
  const results: TargetResult[] = [];
  for (const service of services) results.push(await applyMessagingService(port, service, urls, plan.dryRun));
  return results;
};

/** Applies `plan` (or, with `dryRun`, only computes it); returns what differed per target. */
export const configureTwilio = async (
  client: TwilioClient,
  plan: ConfigurePlan,
  messagingServices: MessagingServicePort = messagingServicePort(client),
): Promise<TargetResult[]> => {
  const inboundUrl = plan.messagingInboundUrl;
  if (plan.phoneNumbers.length > 0 && !inboundUrl) {
    throw new TwilioConfigureError("--phone-number needs the messaging inbound URL (outputs file or flag)");
  }
  const urls = messagingUrls(plan);
  // Every number and service is looked up before anything is written, so a typo leaves the account untouched.
  const numbers = await Promise.all(
    plan.phoneNumbers.map((phoneNumber) => findPhoneNumber(client, phoneNumber)),
  );
  const services = urls
    ? await fetchMessagingServices(messagingServices, plan.messagingServiceSids ?? [])
    : [];
  const results = [await configureConversations(client, plan)];
  for (const number of numbers) {
    results.push(await configurePhoneNumber(client, number, inboundUrl ?? "", plan.dryRun));
  }
  for (const service of services) {
    if (urls) results.push(await applyMessagingService(messagingServices, service, urls, plan.dryRun));
  }
  return results;
};

/**
 * Twilio has no per-number messaging status URL (a number's StatusCallback is for voice), so a plan with
 * numbers but no Messaging Service leaves the status URL to the sender; say where it has to go.
 */
export const statusUrlAdvice = (plan: ConfigurePlan): string[] =>
  plan.phoneNumbers.length > 0 && (plan.messagingServiceSids ?? []).length === 0
    ? [
        `messaging status URL ${plan.messagingStatusUrl ? `"${plan.messagingStatusUrl}" ` : ""}not set: numbers have no status-callback setting; pass it as the StatusCallback of each send (sendOutbound({ statusCallback })) or configure a Messaging Service with --messaging-service MG…`,
      ]
    : [];

export const describeResults = (results: readonly TargetResult[], dryRun: boolean): string[] =>
  results.flatMap(({ target, changes }) =>
    changes.length === 0
      ? [`${target}: unchanged`]
      : [
          `${target}: ${dryRun ? "would change" : "changed"}`,
          ...changes.map(({ field, from, to }) => `  ${field}: ${from} → ${to}`),
        ],
  );

// ---- command line ------------------------------------------------------------------------------------

export const usage = `Usage: npm run twilio:configure -- [options]

Points Twilio at the deployed webhook API. Changes only settings that differ; prints each change.

URLs (one source required):
  --outputs <file>              cdk-outputs.json written by \`cdk deploy --outputs-file\`
  --stack <name>                stack in the outputs file (default: the one with ${webhookUrlOutputKey("conversations")})
  --conversations-url <url>     Conversations pre- and post-action webhook URL
  --messaging-inbound-url <url> Messaging inbound URL for --phone-number and --messaging-service
  --messaging-status-url <url>  Messaging status-callback URL for --messaging-service

Targets:
  --service <IS…>               configure this Conversation Service instead of the global webhooks
  --phone-number <+E.164>       set SmsUrl/SmsMethod=POST on this number (repeatable)
  --messaging-service <MG…>     set InboundRequestUrl, InboundMethod=POST and StatusCallback on this
                                Messaging Service (repeatable)

  --dry-run                     show what would change, change nothing
  --help                        this text

Credentials (environment): ${EnvNames.twilioAccountSid} with ${EnvNames.twilioAuthToken}, or with
${EnvNames.twilioApiKeySid} + ${EnvNames.twilioApiKeySecret}. ${EnvNames.twilioApiBaseUrl} redirects the client (local emulator).`;

export interface CommandLine {
  readonly help: boolean;
  readonly plan?: ConfigurePlan;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const absoluteUrl = (flag: string, value: string): string => {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new TwilioConfigureError(`${flag} must be an absolute URL, got "${value}"`, { cause: error });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TwilioConfigureError(`${flag} must be an http(s) URL, got "${value}"`);
  }
  return value;
};

const urlsFromOutputs = async (
  file: string,
  stackName: string | undefined,
): Promise<{ conversations?: string; messagingInbound?: string; messagingStatus?: string }> => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new TwilioConfigureError(`cannot read outputs file ${file}`, { cause: error });
  }
  if (!isRecord(parsed)) throw new TwilioConfigureError(`${file} is not a cdk outputs file`);
  const conversationsKey = webhookUrlOutputKey("conversations");
  const stacks = Object.entries(parsed).filter(
    (entry): entry is [string, Record<string, unknown>] => isRecord(entry[1]) && conversationsKey in entry[1],
  );
  const stack = stackName ? stacks.find(([name]) => name === stackName) : stacks[0];
  if (!stack) {
    throw new TwilioConfigureError(
      `${file} has no stack${stackName ? ` ${stackName}` : ""} with ${conversationsKey}`,
    );
  }
  const [, outputs] = stack;
  const text = (key: string) => (typeof outputs[key] === "string" ? outputs[key] : undefined);
  return {
    conversations: text(conversationsKey),
    messagingInbound: text(webhookUrlOutputKey("messaging-inbound")),
    messagingStatus: text(webhookUrlOutputKey("messaging-status")),
  };
};

const e164 = /^\+[1-9]\d{6,14}$/;

/** Parses argv (without `node script`) into a plan; reads the outputs file when given. */
export const parseCommandLine = async (argv: readonly string[]): Promise<CommandLine> => {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv);
  } catch (error) {
    throw new TwilioConfigureError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const { values } = parsed;
  if (values.help) return { help: true };
  const fromFile = values.outputs ? await urlsFromOutputs(values.outputs, values.stack) : {};
  const conversationsUrl = values["conversations-url"] ?? fromFile.conversations;
  if (!conversationsUrl)
    throw new TwilioConfigureError("no Conversations URL: pass --outputs or --conversations-url");
  const inbound = values["messaging-inbound-url"] ?? fromFile.messagingInbound;
  const serviceSid = values.service;
  if (serviceSid !== undefined && !/^IS[0-9a-fA-F]{32}$/.test(serviceSid)) {
    throw new TwilioConfigureError(`--service must be a Conversation Service SID (IS…), got "${serviceSid}"`);
  }
  const status = values["messaging-status-url"] ?? fromFile.messagingStatus;
  const phoneNumbers = values["phone-number"] ?? [];
  const messagingServiceSids = values["messaging-service"] ?? [];
  for (const sid of messagingServiceSids) {
    if (!messagingServiceSidPattern.test(sid)) {
      throw new TwilioConfigureError(
        `--messaging-service must be a Messaging Service SID (MG…), got "${sid}"`,
      );
    }
  }
  for (const number of phoneNumbers) {
    if (!e164.test(number))
      throw new TwilioConfigureError(`--phone-number must be E.164 (+15551234567), got "${number}"`);
  }
  return {
    help: false,
    plan: {
      conversationsUrl: absoluteUrl("conversations URL", conversationsUrl),
      messagingInboundUrl: inbound === undefined ? undefined : absoluteUrl("messaging inbound URL", inbound),
      messagingStatusUrl: status === undefined ? undefined : absoluteUrl("messaging status URL", status),
      serviceSid,
      phoneNumbers,
      messagingServiceSids,
      dryRun: values["dry-run"] ?? false,
    },
  };
};

const parseCliArgs = (argv: readonly string[]) =>
  parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      outputs: { type: "string" },
      stack: { type: "string" },
      "conversations-url": { type: "string" },
      "messaging-inbound-url": { type: "string" },
      "messaging-status-url": { type: "string" },
      service: { type: "string" },
      "phone-number": { type: "string", multiple: true },
      "messaging-service": { type: "string", multiple: true },
      "dry-run": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });

/** Builds the client from the environment: API key when both parts are set, else the auth token. */
export const clientFromEnv = (env: Env): TwilioClient => {
  const accountSid = env[EnvNames.twilioAccountSid]?.trim();
  if (!accountSid || !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
    throw new TwilioConfigureError(`set ${EnvNames.twilioAccountSid} to the account SID (AC…)`);
  }
  const keySid = env[EnvNames.twilioApiKeySid]?.trim();
  const keySecret = env[EnvNames.twilioApiKeySecret]?.trim();
  const authToken = env[EnvNames.twilioAuthToken]?.trim();
  const [username, password] = keySid && keySecret ? [keySid, keySecret] : [accountSid, authToken];
  if (!password) {
    throw new TwilioConfigureError(
      `set ${EnvNames.twilioAuthToken}, or ${EnvNames.twilioApiKeySid} and ${EnvNames.twilioApiKeySecret}`,
    );
  }
  const client = twilio(username, password, { accountSid });
  const baseUrl = env[EnvNames.twilioApiBaseUrl]?.trim().replace(/\/+$/, "");
  if (baseUrl) {
    client.conversations.baseUrl = baseUrl;
    client.api.baseUrl = baseUrl;
    // The emulator has no Messaging v1, but a redirected client must never reach the real Twilio.
    client.messaging.baseUrl = baseUrl;
  }
  return client;
};

export const main = async (
  argv: readonly string[],
  env: Env,
  out: (line: string) => void,
): Promise<number> => {
  try {
    const { help, plan } = await parseCommandLine(argv);
    if (help || !plan) {
      out(usage);
      return 0;
    }
    const results = await configureTwilio(clientFromEnv(env), plan);
    for (const line of [...describeResults(results, plan.dryRun), ...statusUrlAdvice(plan)]) out(line);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    out(`twilio:configure failed: ${message}${error instanceof TwilioConfigureError ? " (see --help)" : ""}`);
    return 1;
  }
};

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2), processEnv(), (line) => console.log(line));
}
