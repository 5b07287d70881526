// The webhook use case: route → size and content-type gates → signature on the raw body → classify →
// pre-event decision, or dedupe claim + hand-off to SQS. Returns the HTTP response and what happened,
// and never lets bad input become a 5xx: only a failing dependency does (503, nothing acknowledged).
import { FormBodyError, type FormParams, parseFormBody } from "../domain/form-body.ts";
import { toEnvelope } from "../domain/queue-envelope.ts";
import { verifySignature } from "../domain/signature.ts";
import { classifyEvent, InvalidEventError, type PostEvent } from "../domain/webhook-events.ts";
import { type WebhookRouteKind, WebhookRoutes } from "../resources.ts";
import { DependencyError, RequestRejectedError } from "./errors.ts";
import { emptyResponse, type HttpRequest, type HttpResponse, textResponse, toErrorResponse } from "./http.ts";
import type { AuthTokenSource, DedupeStore, EventQueue, PreEventPolicy } from "./ports.ts";

export type WebhookDeps = {
  /** Public base URL Twilio calls, without a trailing slash (e.g. https://hooks.example.com). */
  readonly publicBaseUrl: string;
  readonly maxBodyBytes: number;
  readonly tokens: AuthTokenSource;
  readonly dedupe: DedupeStore;
  readonly queue: EventQueue;
  readonly preEvents: PreEventPolicy;
  /**
   * A duplicate seen within this many ms of the first claim re-sends the hand-off with the same SQS
   * deduplication id: SQS drops it if the first one arrived, and delivers it if the first invocation
   * died between claim and send. Must stay below SQS FIFO's 5-minute deduplication interval.
   */
  readonly resendWindowMs: number;
};

export type Outcome =
  | "enqueued"
  | "duplicate"
  | "duplicate-resent"
  | "pre-allowed"
  | "pre-rejected"
  | "rejected"
  | "unavailable";

export type WebhookResult = {
  readonly response: HttpResponse;
  readonly outcome: Outcome;
  readonly route?: WebhookRouteKind | undefined;
  readonly kind?: string;
  readonly eventId?: string;
  readonly reason?: string;
  readonly idempotencyToken?: string | undefined;
  readonly webhookSid?: string | undefined;
};

const xmlEmptyResponse: HttpResponse = textResponse(
  200,
  '<?xml version="1.0" encoding="UTF-8"?><Response/>',
  "text/xml; charset=utf-8",
);

/** Twilio's expected acknowledgement per route: TwiML for inbound messages, empty otherwise. */
const acknowledgement = (route: WebhookRouteKind): HttpResponse => {
  switch (route) {
    case "messaging-inbound":
      return xmlEmptyResponse;
    case "messaging-status":
      return emptyResponse(204);
    case "conversations":
      return emptyResponse(200);
  }
};

const routesByPath: ReadonlyMap<string, WebhookRouteKind> = new Map(Object.entries(WebhookRoutes));

type ParsedBody = { readonly params: FormParams; readonly jsonBody?: string };

const mediaTypeOf = (contentType: string | undefined): string =>
  (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";

const parseBody = (contentType: string | undefined, body: Buffer): ParsedBody => {
  const mediaType = mediaTypeOf(contentType);
  const text = body.toString("utf8");
  if (mediaType === "application/x-www-form-urlencoded") {
    try {
      return { params: parseFormBody(text) };
    } catch (error) {
      if (error instanceof FormBodyError)
        throw new RequestRejectedError(400, error.message, { cause: error });
      throw error;
    }
  }
  if (mediaType === "application/json") return { params: jsonParams(text), jsonBody: text };
  throw new RequestRejectedError(
    415,
    `unsupported content type "${mediaType || "none"}"; expected application/x-www-form-urlencoded`,
  );
};

/** JSON webhooks carry their fields as a flat object; nested values are kept as their JSON text. */
const jsonParams = (text: string): FormParams => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RequestRejectedError(400, "body is not valid JSON", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new RequestRejectedError(400, "JSON body must be an object");
  }
  const params: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(parsed)) {
    params[name] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return params;
};

const verify = async (deps: WebhookDeps, request: HttpRequest, body: ParsedBody): Promise<void> => {
  const signature = request.headers["x-twilio-signature"];
  if (!signature) throw new RequestRejectedError(403, "missing X-Twilio-Signature header");
  // Twilio signs the URL it called, byte for byte: the configured public URL plus the raw query string
  // as received. Rebuilding the query from parsed parameters would reorder or re-encode it.
  const url = `${deps.publicBaseUrl}${request.rawPath}${request.rawQueryString ? `?${request.rawQueryString}` : ""}`;
  const signed =
    body.jsonBody === undefined
      ? { url, signature, params: body.params }
      : { url, signature, jsonBody: body.jsonBody };
  const accountSid = firstString(body.params.AccountSid);
  let tokens: readonly string[];
  try {
    tokens = await deps.tokens.tokensFor(accountSid);
  } catch (error) {
    throw new DependencyError("could not load Twilio auth tokens", { cause: error });
  }
  if (verifySignature(signed, tokens)) return;
  // A rotated token reaches us only after the cache refreshes; try once more with fresh tokens.
  if (await deps.tokens.refresh().catch(() => false)) {
    if (verifySignature(signed, await deps.tokens.tokensFor(accountSid))) return;
  }
  throw new RequestRejectedError(403, "invalid X-Twilio-Signature");
};

const firstString = (value: string | readonly string[] | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0];

const handOff = async (
  deps: WebhookDeps,
  event: PostEvent,
  params: FormParams,
  receivedAt: number,
): Promise<void> => {
  const body = JSON.stringify(toEnvelope(event, params, receivedAt));
  const message = { body, groupKey: event.groupKey, deduplicationId: event.eventId };
  try {
    await Promise.all(event.destinations.map((queue) => deps.queue.send(queue, message)));
  } catch (error) {
    throw new DependencyError("hand-off to SQS failed", { cause: error });
  }
};

const ingest = async (
  deps: WebhookDeps,
  event: PostEvent,
  params: FormParams,
  receivedAt: number,
): Promise<Outcome> => {
  let claim: Awaited<ReturnType<DedupeStore["claim"]>>;
  try {
    claim = await deps.dedupe.claim(event.eventId, receivedAt);
  } catch (error) {
    throw new DependencyError("dedupe claim failed", { cause: error });
  }
  if (claim.kind === "duplicate") {
    if (receivedAt - claim.firstSeenAt >= deps.resendWindowMs) return "duplicate";
    await handOff(deps, event, params, receivedAt);
    return "duplicate-resent";
  }
  try {
    await handOff(deps, event, params, receivedAt);
  } catch (error) {
    // Not enqueued, so not acknowledged: give the claim back so Twilio's redelivery is processed.
    await deps.dedupe.release(claim).catch(() => undefined);
    throw error;
  }
  return "enqueued";
};

export const handleWebhook = async (deps: WebhookDeps, request: HttpRequest): Promise<WebhookResult> => {
  const route = routesByPath.get(request.rawPath);
  // Logged to correlate Twilio retries; never used as the dedupe key (Twilio does not document them
  // for Conversations webhooks).
  const idempotencyToken = request.headers["i-twilio-idempotency-token"];
  let webhookSid: string | undefined;
  try {
    if (route === undefined) throw new RequestRejectedError(404, "no such webhook route");
    if (request.method !== "POST") {
      throw new RequestRejectedError(405, "only POST is accepted", { headers: { allow: "POST" } });
    }
    if (request.body.length > deps.maxBodyBytes) {
      throw new RequestRejectedError(413, `body exceeds ${deps.maxBodyBytes} bytes`);
    }
    const body = parseBody(request.headers["content-type"], request.body);
    await verify(deps, request, body);
    webhookSid = firstString(body.params.WebhookSid);
    let event: ReturnType<typeof classifyEvent>;
    try {
      event = classifyEvent(route, body.params);
    } catch (error) {
      if (error instanceof InvalidEventError)
        throw new RequestRejectedError(400, error.message, { cause: error });
      throw error;
    }
    if (event.type === "pre") {
      const decision = await deps.preEvents.decide(event, body.params);
      if (decision.allow)
        return { response: emptyResponse(200), outcome: "pre-allowed", route, kind: event.eventType };
      return {
        response: textResponse(403, `${decision.reason}\n`),
        outcome: "pre-rejected",
        route,
        kind: event.eventType,
        reason: decision.reason,
      };
    }
    const outcome = await ingest(deps, event, body.params, request.receivedAt);
    return {
      response: acknowledgement(route),
      outcome,
      route,
      kind: event.kind,
      eventId: event.eventId,
      idempotencyToken,
      webhookSid,
    };
  } catch (error) {
    const response = toErrorResponse(error);
    return {
      response,
      outcome: response.statusCode >= 500 ? "unavailable" : "rejected",
      route,
      reason: error instanceof Error ? error.message : String(error),
      idempotencyToken,
      webhookSid,
    };
  }
};
