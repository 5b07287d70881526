// `npm run simulate -- <event> [options]`: sends one webhook to the running local stack exactly as Twilio
// would — form-encoded POST, Twilio's headers, X-Twilio-Signature over the public URL with the stack's
// auth token (both read from .local/stack.json) — and prints the status and body it got back.
import { request } from "node:http";
import { parseArgs } from "node:util";
import { keywordMatcher, TwilioDefaultKeywords } from "../domain/keywords.ts";
import { type WebhookRoutePath, WebhookRoutes } from "../resources.ts";
import { LocalStackError } from "./errors.ts";
import { DefaultStackFile, readStackEndpoint, type StackEndpoint } from "./stack-file.ts";
import {
  encodeForm,
  type FormParams,
  inboundSmsParams,
  inboundWhatsAppParams,
  messageAddedParams,
  participantAddedParams,
  preMessageAddParams,
  preParticipantAddParams,
  sid,
  signatureFor,
  stateUpdatedParams,
  statusParams,
  twilioHeaders,
} from "./twilio-webhooks.ts";

class UsageError extends LocalStackError {
  override name = "UsageError";
}

type OptionSpec = { readonly type: "string" | "boolean"; readonly multiple?: boolean; readonly help: string };
type Values = Readonly<Record<string, string | boolean | readonly (string | boolean)[] | undefined>>;

type Command = {
  readonly summary: string;
  readonly path: WebhookRoutePath;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly required: readonly string[];
  build(values: Values, stack: StackEndpoint): FormParams;
};

/** The value of `--name`, if given. */
const given = (values: Values, name: string): string | undefined => {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
};

const text = (values: Values, name: string, fallback?: string): string => {
  const value = given(values, name) ?? fallback;
  if (value !== undefined) return value;
  throw new UsageError(`--${name} is required`);
};

const list = (values: Values, name: string): string[] => {
  const value = values[name];
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
};

const ourNumber = (stack: StackEndpoint): string => stack.phoneNumbers[0] ?? "+15005550006";

const commands: Readonly<Record<string, Command>> = {
  "inbound-sms": {
    summary: "a customer texts your number (Messaging inbound webhook)",
    path: "/twilio/messaging/inbound",
    options: {
      from: { type: "string", help: "customer's number, E.164 (e.g. +14155550100)" },
      to: { type: "string", help: "your Twilio number (default: the emulator's number)" },
      body: {
        type: "string",
        help: "message text; STOP/STOPALL/UNSUBSCRIBE/CANCEL/END/QUIT also opts the number out in the emulator, as Twilio does",
      },
      "media-url": { type: "string", multiple: true, help: "a media URL (repeat for several: MMS)" },
      "messaging-service-sid": { type: "string", help: "MG… when the number belongs to a Messaging Service" },
    },
    required: ["from", "body"],
    build: (values, stack) =>
      inboundSmsParams({
        accountSid: stack.accountSid,
        from: text(values, "from"),
        to: text(values, "to", ourNumber(stack)),
        body: text(values, "body"),
        mediaUrls: list(values, "media-url"),
        messagingServiceSid: given(values, "messaging-service-sid"),
      }),
  },
  "inbound-whatsapp": {
    summary: "a customer writes on WhatsApp (whatsapp: addresses, ProfileName, WaId)",
    path: "/twilio/messaging/inbound",
    options: {
      from: { type: "string", help: "customer's number (whatsapp: prefix added if missing)" },
      to: { type: "string", help: "your WhatsApp sender (default: the emulator's number)" },
      body: { type: "string", help: "message text" },
      "profile-name": { type: "string", help: 'WhatsApp profile name (default "Local Customer")' },
      "media-url": { type: "string", multiple: true, help: "a media URL (repeatable)" },
      "messaging-service-sid": { type: "string", help: "MG… of the sender's Messaging Service" },
    },
    required: ["from", "body"],
    build: (values, stack) =>
      inboundWhatsAppParams({
        accountSid: stack.accountSid,
        from: text(values, "from"),
        to: text(values, "to", ourNumber(stack)),
        body: text(values, "body"),
        profileName: text(values, "profile-name", "Local Customer"),
        mediaUrls: list(values, "media-url"),
        messagingServiceSid: given(values, "messaging-service-sid"),
      }),
  },
  status: {
    summary: "a delivery status callback for a message you sent",
    path: "/twilio/messaging/status",
    options: {
      sid: { type: "string", help: "the MessageSid (SM…/MM…) the status is about" },
      status: { type: "string", help: "queued|sent|delivered|undelivered|failed|read|…" },
      "error-code": { type: "string", help: "ErrorCode, e.g. 21610 (recipient replied STOP) or 30003" },
      from: { type: "string", help: "your number (default: the emulator's number)" },
      to: { type: "string", help: "recipient (default +14155550100)" },
    },
    required: ["sid", "status"],
    build: (values, stack) =>
      statusParams({
        accountSid: stack.accountSid,
        messageSid: text(values, "sid"),
        status: text(values, "status"),
        errorCode: given(values, "error-code"),
        from: text(values, "from", ourNumber(stack)),
        to: text(values, "to", "+14155550100"),
      }),
  },
  "conversation-message": {
    summary: "onMessageAdded: a message was added to a conversation",
    path: "/twilio/conversations",
    options: {
      conversation: { type: "string", help: "ConversationSid (CH…)" },
      author: { type: "string", help: "a phone/whatsapp address (customer) or a chat identity (agent)" },
      body: { type: "string", help: "message text" },
      index: { type: "string", help: "message Index in the conversation (default 0)" },
      participant: { type: "string", help: "ParticipantSid (MB…) of the author" },
    },
    required: ["conversation", "author", "body"],
    build: (values, stack) =>
      messageAddedParams({
        accountSid: stack.accountSid,
        conversationSid: text(values, "conversation"),
        author: text(values, "author"),
        body: text(values, "body"),
        index: Number(text(values, "index", "0")),
        participantSid: given(values, "participant"),
      }),
  },
  "participant-added": {
    summary: "onParticipantAdded: an SMS/WhatsApp participant joined a conversation",
    path: "/twilio/conversations",
    options: {
      conversation: { type: "string", help: "ConversationSid (CH…)" },
      address: { type: "string", help: "the participant's address (MessagingBinding.Address)" },
      proxy: { type: "string", help: "your number (MessagingBinding.ProxyAddress; default: the emulator's)" },
      participant: { type: "string", help: "ParticipantSid (MB…; default: a new one)" },
    },
    required: ["conversation", "address"],
    build: (values, stack) =>
      participantAddedParams({
        accountSid: stack.accountSid,
        conversationSid: text(values, "conversation"),
        address: text(values, "address"),
        proxy: text(values, "proxy", ourNumber(stack)),
        participantSid: given(values, "participant"),
      }),
  },
  "state-updated": {
    summary: "onConversationStateUpdated: active/inactive/closed",
    path: "/twilio/conversations",
    options: {
      conversation: { type: "string", help: "ConversationSid (CH…)" },
      from: { type: "string", help: "StateFrom: active|inactive|closed" },
      to: { type: "string", help: "StateTo: active|inactive|closed" },
      reason: { type: "string", help: "Reason: API|TIMER|EVENT (default API)" },
    },
    required: ["conversation", "from", "to"],
    build: (values, stack) =>
      stateUpdatedParams({
        accountSid: stack.accountSid,
        conversationSid: text(values, "conversation"),
        from: text(values, "from"),
        to: text(values, "to"),
        reason: text(values, "reason", "API"),
      }),
  },
  "pre-participant-add": {
    summary: "onParticipantAdd (pre-event): may this address be added? The answer is the decision",
    path: "/twilio/conversations",
    options: {
      address: { type: "string", help: "the address about to be added (MessagingBinding.Address)" },
      proxy: { type: "string", help: "your number (MessagingBinding.ProxyAddress; default: the emulator's)" },
      conversation: { type: "string", help: "ConversationSid (CH…; default: a new one)" },
    },
    required: ["address"],
    build: (values, stack) =>
      preParticipantAddParams({
        accountSid: stack.accountSid,
        conversationSid: text(values, "conversation", sid("CH")),
        address: text(values, "address"),
        proxy: text(values, "proxy", ourNumber(stack)),
      }),
  },
  "pre-message-add": {
    summary: "onMessageAdd (pre-event): may this message be added?",
    path: "/twilio/conversations",
    options: {
      conversation: { type: "string", help: "ConversationSid (CH…; default: a new one)" },
      author: { type: "string", help: "author address or identity" },
      body: { type: "string", help: "message text" },
    },
    required: ["author", "body"],
    build: (values, stack) =>
      preMessageAddParams({
        accountSid: stack.accountSid,
        conversationSid: text(values, "conversation", sid("CH")),
        author: text(values, "author"),
        body: text(values, "body"),
      }),
  },
};

const commonOptions: Readonly<Record<string, OptionSpec>> = {
  "stack-file": {
    type: "string",
    help: `where the running stack is described (default ${DefaultStackFile})`,
  },
  query: {
    type: "string",
    help: 'raw query string to append to the webhook URL (signed too), e.g. "tenant=acme&x=O\'Hara"',
  },
  repeat: { type: "string", help: "deliver the identical request N times (Twilio retries; default 1)" },
  "bad-signature": { type: "boolean", help: "send a wrong X-Twilio-Signature (expect 403)" },
  verbose: { type: "boolean", help: "also print the parameters and headers sent" },
  help: { type: "boolean", help: "show help" },
};

const optionLines = (options: Readonly<Record<string, OptionSpec>>): string =>
  Object.entries(options)
    .map(([name, spec]) => {
      const flag = `--${name}${spec.type === "string" ? " <value>" : ""}`;
      return `    ${flag.padEnd(30)} ${spec.help}${spec.multiple ? " (repeatable)" : ""}`;
    })
    .join("\n");

const help = (): string =>
  [
    "Usage: npm run simulate -- <event> [options]",
    "",
    "Sends a webhook to the running local stack (npm start) exactly as Twilio would: form-encoded,",
    "signed with the stack's auth token over its public URL (.local/stack.json). Prints status and body.",
    "",
    "Events:",
    ...Object.entries(commands).flatMap(([name, command]) => [
      `  ${name}  ${command.summary}   →  POST ${command.path}`,
      `    required: ${command.required.map((option) => `--${option}`).join(" ")}`,
      optionLines(command.options),
      "",
    ]),
    "Options for every event:",
    optionLines(commonOptions),
    "",
    "Examples:",
    '  npm run simulate -- inbound-sms --from +14155550100 --body "Hi, is my order on its way?"',
    "  npm run simulate -- inbound-sms --from +14155550100 --body STOP",
    "  npm run simulate -- inbound-whatsapp --from +447700900123 --body Hola --profile-name Ana",
    "  npm run simulate -- status --sid SMxxxxxxxx --status undelivered --error-code 21610",
    "  npm run simulate -- pre-participant-add --address +14155550100",
  ].join("\n");

type HttpReply = { readonly status: number; readonly statusText: string; readonly body: string };

/** node:http, not fetch: the target goes out byte for byte (fetch would re-encode `'` in the query). */
const post = (url: URL, target: string, body: string, headers: Record<string, string>): Promise<HttpReply> =>
  new Promise((resolvePromise, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: target,
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? "",
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });

/**
 * Records a STOP or START in the emulator, as Twilio's own SMS opt-out handling does (with its default
 * keywords) before delivering the webhook.
 */
const twilioOptOutList = keywordMatcher(TwilioDefaultKeywords);
const updateEmulatorOptOut = async (stack: StackEndpoint, address: string, body: string): Promise<void> => {
  const intent = twilioOptOutList.classify(body)?.intent;
  if (!stack.emulated || (intent !== "opt-out" && intent !== "opt-in")) return;
  const url = new URL(stack.api);
  await post(url, `/_local/twilio/${intent}`, new URLSearchParams({ Address: address }).toString(), {
    "content-type": "application/x-www-form-urlencoded",
  });
};

const main = async (argv: readonly string[]): Promise<number> => {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${help()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) throw new UsageError(`unknown event "${name}"; see npm run simulate -- --help`);
  const specs = { ...command.options, ...commonOptions };
  const { values } = parseArgs({
    args: [...rest],
    options: Object.fromEntries(
      Object.entries(specs).map(([option, spec]) => [
        option,
        { type: spec.type, multiple: spec.multiple ?? false },
      ]),
    ),
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(
      `Usage: npm run simulate -- ${name} ${command.required.map((option) => `--${option} <value>`).join(" ")} [options]\n\n${command.summary}\n\n${optionLines(specs)}\n`,
    );
    return 0;
  }
  for (const option of command.required) {
    if (values[option] === undefined) throw new UsageError(`${name} needs --${option}`);
  }
  const stack = await readStackEndpoint(text(values, "stack-file", DefaultStackFile));
  const params = command.build(values, stack);
  const query = text(values, "query", "");
  const target = `${command.path}${query ? `?${query}` : ""}`;
  // Twilio signs the URL it was configured with: the public base URL, not necessarily where we send.
  const signedUrl = `${stack.publicWebhookBaseUrl}${target}`;
  const signature =
    values["bad-signature"] === true
      ? signatureFor(`${stack.authToken}-wrong`, signedUrl, params)
      : signatureFor(stack.authToken, signedUrl, params);
  const headers = twilioHeaders(signature);
  const body = encodeForm(params);
  const api = new URL(stack.api);
  const repeat = Number(text(values, "repeat", "1"));
  if (!Number.isInteger(repeat) || repeat < 1)
    throw new UsageError("--repeat must be a positive whole number");

  const from = params.From;
  if (
    command.path === "/twilio/messaging/inbound" &&
    typeof from === "string" &&
    !from.startsWith("whatsapp:")
  ) {
    if (typeof params.Body === "string") await updateEmulatorOptOut(stack, from, params.Body);
  }

  process.stdout.write(
    `POST ${api.origin}${target}  (${WebhookRoutes[command.path]}, signed for ${signedUrl})\n`,
  );
  if (values.verbose === true) {
    for (const [key, value] of Object.entries(params)) process.stdout.write(`  ${key}=${String(value)}\n`);
    for (const [key, value] of Object.entries(headers)) process.stdout.write(`  ${key}: ${value}\n`);
  }
  let worst = 0;
  for (let attempt = 1; attempt <= repeat; attempt += 1) {
    const reply = await post(api, target, body, { ...headers, host: api.host });
    worst = Math.max(worst, reply.status);
    const label = repeat > 1 ? ` (delivery ${attempt}/${repeat})` : "";
    process.stdout.write(
      `→ ${reply.status} ${reply.statusText}${label}\n${reply.body ? `${reply.body.trimEnd()}\n` : ""}`,
    );
  }
  return worst >= 200 && worst < 300 ? 0 : 1;
};

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const refused = error instanceof Error && "code" in error && error.code === "ECONNREFUSED";
    process.stderr.write(
      `simulate: ${refused ? "the local stack is not answering (is npm start running?)" : message}\n`,
    );
    process.exit(error instanceof UsageError || error instanceof TypeError ? 2 : 1);
  },
);
