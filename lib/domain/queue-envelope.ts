// The message every queue carries: a verified webhook's params plus what intake learned about it.
// Producers build it with `toEnvelope`; consumers parse SQS record bodies back with `parseEnvelope`,
// which is the edge where an untrusted string becomes a typed value.
import type { FormParams } from "./form-body.ts";
import type { EventKind, PostEvent } from "./webhook-events.ts";

export const EnvelopeVersion = 1;

export type Envelope = {
  readonly v: typeof EnvelopeVersion;
  readonly eventId: string;
  readonly kind: EventKind;
  /** When intake received the webhook (epoch ms): the event time used for monotonic state changes. */
  readonly receivedAt: number;
  readonly params: FormParams;
  /** Set when a consumer forwards the event to the next queue (e.g. the consent gate to the mirror). */
  readonly forwardedBy?: string;
};

export class InvalidEnvelopeError extends Error {
  override name = "InvalidEnvelopeError";
}

export const toEnvelope = (event: PostEvent, params: FormParams, receivedAt: number): Envelope => ({
  v: EnvelopeVersion,
  eventId: event.eventId,
  kind: event.kind,
  receivedAt,
  params,
});

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isParamValue = (value: unknown): value is string | readonly string[] =>
  typeof value === "string" || (Array.isArray(value) && value.every((item) => typeof item === "string"));

const isEventKind = (value: unknown): value is EventKind =>
  typeof value === "string" &&
  (value === "messaging.inbound" || value === "messaging.status" || value.startsWith("conversations.on"));

export const parseEnvelope = (body: string): Envelope => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new InvalidEnvelopeError("record body is not JSON", { cause: error });
  }
  if (!isRecord(parsed)) throw new InvalidEnvelopeError("record body is not an object");
  const { v, eventId, kind, receivedAt, params, forwardedBy } = parsed;
  if (v !== EnvelopeVersion) throw new InvalidEnvelopeError(`unsupported envelope version ${String(v)}`);
  if (typeof eventId !== "string" || eventId === "") throw new InvalidEnvelopeError("eventId missing");
  if (!isEventKind(kind)) throw new InvalidEnvelopeError(`unknown kind ${String(kind)}`);
  if (typeof receivedAt !== "number" || !Number.isFinite(receivedAt)) {
    throw new InvalidEnvelopeError("receivedAt missing");
  }
  if (!isRecord(params)) throw new InvalidEnvelopeError("params missing");
  const typedParams: Record<string, string | readonly string[]> = Object.create(null);
  for (const [name, value] of Object.entries(params)) {
    if (!isParamValue(value)) throw new InvalidEnvelopeError(`param ${name} is not a string or list`);
    typedParams[name] = value;
  }
  if (forwardedBy !== undefined && typeof forwardedBy !== "string") {
    throw new InvalidEnvelopeError("forwardedBy must be a string");
  }
  return {
    v,
    eventId,
    kind,
    receivedAt,
    params: typedParams,
    ...(forwardedBy === undefined ? {} : { forwardedBy }),
  };
};
