// A local, stateful stand-in for api.twilio.com and conversations.twilio.com, used by the local stack and
// the end-to-end tests. Every request is checked against Twilio's OpenAPI specs (unknown parameters
// rejected) and every response it produces is checked too: a response that breaks the spec is an
// emulator bug, answered with a 500, logged, and re-thrown by `stop()`.
//
// Pointing the real `twilio` SDK (6.2.0) at it — nothing else in the SDK changes:
//
//   const client = twilio(accountSid, authToken);            // or twilio(apiKeySid, apiKeySecret, { accountSid })
//   client.conversations.baseUrl = emulator.url;             // Conversations v1 (`/v1/...`)
//   client.api.baseUrl = emulator.url;                       // Programmable Messaging (`/2010-04-01/...`)
//
// `Domain.baseUrl` is read on every request and `client.conversations` / `client.api` are cached
// getters, so the assignment sticks for the client's lifetime (`client.messages` goes through
// `client.api`). Leave `edge`/`region` (and TWILIO_EDGE/TWILIO_REGION) unset: the SDK splices them into
// the hostname and would turn 127.0.0.1 into 127.<edge>.<region>.0.1.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { TwilioApiError, TwilioEmulatorBugError, twilioErrors } from "./errors.ts";
import { type FaultInjector, Faults } from "./faults.ts";
import { handlers } from "./handlers.ts";
import { inspectorFor, type TwilioEmulatorInspector } from "./inspect.ts";
import { loadTwilioOpenApi, type OperationSpec, type RequestProblem, type SpecLoadStats } from "./openapi.ts";
import type { JsonObject } from "./render.ts";
import { TwilioAccountState } from "./state.ts";

export type { DelayFault, FailureFault, FaultInjector, FaultMatch } from "./faults.ts";
export type {
  ConversationView,
  MessageView,
  OutboundMessageView,
  ParticipantView,
  PhoneNumberView,
  TwilioEmulatorInspector,
} from "./inspect.ts";

export interface RequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** Twilio error code of an error response. */
  readonly code?: number;
  readonly ms: number;
  readonly operationId?: string;
}

export interface TwilioEmulatorOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly host?: "127.0.0.1";
  readonly accountSid: string;
  readonly authToken: string;
  /** API key SID → secret, accepted as Basic credentials for `accountSid`. */
  readonly apiKeys?: Readonly<Record<string, string>>;
  /** Seeds `IncomingPhoneNumbers`, one per number (E.164). */
  readonly phoneNumbers?: readonly string[];
  /** Clock in epoch ms; drives timestamps and conversation timers. Defaults to `Date.now`. */
  readonly now?: () => number;
  readonly onRequest?: (entry: RequestLogEntry) => void;
  /**
   * Test hook only: rewrites a response body before it is validated, to prove the response validator
   * catches a broken emulator. Never set it outside tests of the emulator itself.
   */
  readonly tamperResponse?: (operationId: string, status: number, body: JsonObject | undefined) => unknown;
}

export interface SpecViolation {
  readonly method: string;
  readonly path: string;
  readonly operationId: string | undefined;
  readonly status: number;
  readonly problems: readonly string[];
}

export interface TwilioEmulator {
  /** `http://127.0.0.1:<port>` — the base URL for both `client.conversations` and `client.api`. */
  readonly url: string;
  readonly port: number;
  readonly faults: FaultInjector;
  readonly state: TwilioEmulatorInspector;
  /** How long loading the specs took in this process and whether the JSON cache was warm. */
  readonly specLoad: SpecLoadStats;
  /** Clears all resources (and faults); phone numbers are re-seeded with new SIDs. */
  reset(): void;
  /** Marks an address as having replied STOP: SMS sends to it fail with 21610 until `optIn` or `reset()`. */
  optOut(address: string): void;
  /** The address replied START: SMS sends to it are delivered again. */
  optIn(address: string): void;
  /** Returns and forgets the responses that broke the spec (see `stop()`). */
  takeSpecViolations(): SpecViolation[];
  /** Closes the server; rejects with `TwilioEmulatorBugError` if any response broke the spec. */
  stop(): Promise<void>;
}

interface Outcome {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly operation?: OperationSpec;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function startTwilioEmulator(options: TwilioEmulatorOptions): Promise<TwilioEmulator> {
  const openApi = loadTwilioOpenApi();
  const host = options.host ?? "127.0.0.1";
  const state = new TwilioAccountState({
    accountSid: options.accountSid,
    phoneNumbers: options.phoneNumbers ?? [],
    now: options.now ?? Date.now,
  });
  const faults = new Faults();
  const violations: SpecViolation[] = [];
  const credentials = new Map<string, string>([
    [options.accountSid, options.authToken],
    ...Object.entries(options.apiKeys ?? {}),
  ]);
  let fallbackOrigin = "";

  const server = createServer((req, res) => {
    void serve(req, res).catch((error: unknown) => {
      console.error("[twilio-emulator] failed to answer a request", error);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = (req.method ?? "GET").toUpperCase();
    const url = new URL(req.url ?? "/", "http://emulator.invalid");
    const delay = faults.takeDelay(method, url.pathname);
    let outcome: Outcome;
    try {
      const rawBody = await readBody(req);
      outcome = answer(req, method, url, rawBody);
    } catch (error) {
      outcome = failure(error);
    }
    outcome = checked(method, url.pathname, outcome);
    if (delay !== undefined) await sleep(delay.ms);
    send(res, outcome);
    options.onRequest?.({
      method,
      path: url.pathname,
      status: outcome.status,
      code: errorCode(outcome.body),
      ms: Math.round(performance.now() - started),
      operationId: outcome.operation?.operationId,
    });
  }

  function answer(req: IncomingMessage, method: string, url: URL, rawBody: string): Outcome {
    if (!authenticated(req.headers.authorization)) {
      return {
        ...failure(twilioErrors.authenticate()),
        headers: { "WWW-Authenticate": 'Basic realm="Twilio API"' },
      };
    }
    const fault = faults.takeFailure(method, url.pathname);
    if (fault !== undefined) return failure(twilioErrors.injected(fault.status, fault.code, fault.message));
    const route = openApi.match(method, url.pathname);
    if (route.kind === "not-found") return failure(twilioErrors.notFound(url.pathname));
    if (route.kind === "method-not-allowed") {
      const allowed = route.allowed.map((m) => m.toUpperCase());
      return {
        ...failure(twilioErrors.methodNotAllowed(method, url.pathname, allowed)),
        headers: { Allow: allowed.join(", ") },
      };
    }
    const { operation, pathParams } = route;
    try {
      const contentType = req.headers["content-type"] ?? "";
      if (rawBody !== "" && !contentType.startsWith("application/x-www-form-urlencoded")) {
        throw twilioErrors.unsupportedContentType(contentType);
      }
      const check = openApi.validateRequest(operation, {
        pathParams,
        query: fields(url.searchParams),
        body: fields(new URLSearchParams(rawBody)),
        header: (name) => headerValue(req, name),
      });
      if (!check.ok) throw requestError(operation, check.problem, url.pathname);
      const handler = handlers[operation.operationId];
      if (handler === undefined) throw twilioErrors.notImplemented(operation.operationId);
      state.applyTimers();
      const result = handler({
        state,
        params: check.params,
        pathParams,
        path: url.pathname,
        origin: originOf(req),
      });
      return { status: result.status, body: result.body, operation };
    } catch (error) {
      return { ...failure(error), operation };
    }
  }

  function authenticated(header: string | undefined): boolean {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
    if (match?.[1] === undefined) return false;
    const decoded = Buffer.from(match[1], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const expected = credentials.get(decoded.slice(0, colon));
    return expected !== undefined && expected === decoded.slice(colon + 1);
  }

  function originOf(req: IncomingMessage): string {
    const hostHeader = req.headers.host;
    return hostHeader !== undefined && /^[A-Za-z0-9.\-[\]:]+$/.test(hostHeader)
      ? `http://${hostHeader}`
      : fallbackOrigin;
  }

  /** Validates what is about to be sent; a spec violation becomes a loud 500 instead. */
  function checked(method: string, path: string, outcome: Outcome): Outcome {
    const operationId = outcome.operation?.operationId;
    const body =
      options.tamperResponse !== undefined && operationId !== undefined
        ? options.tamperResponse(
            operationId,
            outcome.status,
            isJsonObject(outcome.body) ? outcome.body : undefined,
          )
        : outcome.body;
    const problems =
      outcome.operation === undefined
        ? openApi.validateErrorBody(body)
        : openApi.validateResponse(outcome.operation, outcome.status, body);
    if (problems.length === 0) return { ...outcome, body };
    const violation = { method, path, operationId, status: outcome.status, problems };
    violations.push(violation);
    const summary = `${operationId ?? "response"} ${outcome.status} violates the OpenAPI spec: ${problems.join("; ")}`;
    console.error(`[twilio-emulator] BUG: ${method} ${path}: ${summary}`);
    return { status: 500, body: twilioErrors.emulatorBug(summary).toBody(), operation: undefined };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = addressOf(server);
  const url = `http://${host}:${port}`;
  fallbackOrigin = url;

  return {
    url,
    port,
    faults,
    state: inspectorFor(state),
    specLoad: openApi.stats,
    reset() {
      state.reset();
      faults.clear();
    },
    optOut(address) {
      state.optedOut.add(address);
    },
    optIn(address) {
      state.optedOut.delete(address);
    },
    takeSpecViolations() {
      return violations.splice(0, violations.length);
    },
    async stop() {
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        // Keep-alive sockets of SDK clients would otherwise hold `close` open.
        server.closeAllConnections();
      });
      if (violations.length > 0) {
        const list = violations.map((v) => `${v.method} ${v.path} → ${v.status}: ${v.problems.join("; ")}`);
        throw new TwilioEmulatorBugError(`Responses broke the OpenAPI spec:\n${list.join("\n")}`);
      }
    },
  };
}

/**
 * Points a real `twilio` client at the emulator: the two domains the project uses. Exactly what the
 * module header describes, for tests and the local stack.
 */
export function routeTwilioClientTo(
  client: { conversations: { baseUrl: string }; api: { baseUrl: string } },
  url: string,
): void {
  client.conversations.baseUrl = url;
  client.api.baseUrl = url;
}

function requestError(operation: OperationSpec, problem: RequestProblem, path: string): TwilioApiError {
  switch (problem.kind) {
    case "unknown-parameters":
      return twilioErrors.unknownParameters(problem.names, operation.operationId);
    case "missing-parameter":
      // Programmable Messaging has dedicated codes for its one required parameter.
      return operation.operationId === "CreateMessage" && problem.name === "To"
        ? twilioErrors.toRequired()
        : twilioErrors.missingParameter(problem.name);
    case "invalid-parameter":
      return twilioErrors.invalidParameter(problem.name, problem.detail);
    case "invalid-path-parameter":
      // A malformed SID in the path names no resource: Twilio answers 404, not 400.
      return twilioErrors.notFound(path);
  }
}

function failure(error: unknown): Outcome {
  if (error instanceof TwilioApiError) return { status: error.status, body: error.toBody() };
  console.error("[twilio-emulator] BUG: unexpected error while handling a request", error);
  const message = error instanceof Error ? error.message : String(error);
  return { status: 500, body: twilioErrors.emulatorBug(message).toBody() };
}

function send(res: ServerResponse, outcome: Outcome): void {
  if (outcome.body === undefined) {
    res.writeHead(outcome.status, { ...outcome.headers }).end();
    return;
  }
  const payload = JSON.stringify(outcome.body);
  res
    .writeHead(outcome.status, {
      ...outcome.headers,
      "Content-Type": "application/json; charset=utf-8",
      "Content-Length": Buffer.byteLength(payload),
    })
    .end(payload);
}

function fields(params: URLSearchParams): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, value] of params) {
    const values = out.get(name);
    if (values === undefined) out.set(name, [value]);
    else values.push(value);
  }
  return out;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(",") : value;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw twilioErrors.badRequest(`Request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function addressOf(server: Server): AddressInfo {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("emulator is not listening on TCP");
  return address;
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorCode(body: unknown): number | undefined {
  return isJsonObject(body) && typeof body.code === "number" ? body.code : undefined;
}
