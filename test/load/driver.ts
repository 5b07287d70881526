// Sends a plan to the local stack's HTTP front door at a stated rate: event i leaves at start + i/rate
// (open loop), except that a customer's next message (or an outbound's next status) waits until the
// previous one was answered, as a customer's phone does. Exact duplicates go out a little after the
// first copy was answered, concurrent duplicates together with it. Every request is logged with its
// start, end and status. With `retry5xx` a 5xx or a dropped connection is re-sent after a pause, as
// Twilio's webhook retries would (the same bytes), until it is answered or the bound is hit.
import { Agent, request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { PlannedEvent, SignedRequest } from "./plan.ts";

export type SendKind = "first" | "concurrent" | "duplicate" | "retry";

export type RequestLog = {
  readonly event: number;
  readonly kind: SendKind;
  readonly startedAt: number;
  readonly endedAt: number;
  /** 0 when the connection failed. */
  readonly status: number;
};

export type EventOutcome = {
  readonly event: PlannedEvent;
  /** When the first copy left (the clock end-to-end latency is measured from). */
  firstSentAt: number | undefined;
  /** When a copy was first answered 2xx: the event is acknowledged. */
  ackedAt: number | undefined;
};

export type DriveOptions = {
  readonly baseUrl: string;
  readonly ratePerSecond: number;
  readonly retry5xx: boolean;
  readonly retryDelayMs?: number;
  /** Give up re-sending an event after this many attempts (bounded runs). */
  readonly maxAttempts?: number;
  readonly requestTimeoutMs?: number;
};

export type DriveResult = {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly requests: readonly RequestLog[];
  readonly outcomes: readonly EventOutcome[];
};

const isSuccess = (status: number) => status >= 200 && status < 300;
const shouldRetry = (status: number) => status === 0 || status >= 500;

export const drive = async (
  plan: readonly PlannedEvent[],
  requests: ReadonlyMap<number, SignedRequest>,
  options: DriveOptions,
): Promise<DriveResult> => {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const base = new URL(options.baseUrl);
  const log: RequestLog[] = [];
  const outcomes = plan.map((event): EventOutcome => ({ event, firstSentAt: undefined, ackedAt: undefined }));
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const maxAttempts = options.maxAttempts ?? 40;
  const timeoutMs = options.requestTimeoutMs ?? 35_000;
  const duplicates: Promise<unknown>[] = [];

  const post = (event: number, kind: SendKind, signed: SignedRequest): Promise<number> =>
    new Promise((resolve) => {
      const startedAt = Date.now();
      const done = (status: number) => {
        log.push({ event, kind, startedAt, endedAt: Date.now(), status });
        resolve(status);
      };
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          method: "POST",
          path: signed.path,
          agent,
          timeout: timeoutMs,
          headers: { ...signed.headers, "content-length": String(Buffer.byteLength(signed.body)) },
        },
        (res) => {
          res.resume();
          res.once("end", () => done(res.statusCode ?? 0));
          res.once("error", () => done(0));
        },
      );
      req.once("timeout", () => req.destroy(new Error("request timed out")));
      req.once("error", () => done(0));
      req.end(signed.body);
    });

  /** First send (with its concurrent copies), then retries until answered; resolves when acknowledged. */
  const deliver = async (outcome: EventOutcome): Promise<void> => {
    const index = outcome.event.index;
    const signed = requests.get(index);
    if (signed === undefined) throw new Error(`no request for event ${index}`);
    outcome.firstSentAt = Date.now();
    const first = await Promise.all(
      Array.from({ length: outcome.event.copies }, (_, copy) =>
        post(index, copy === 0 ? "first" : "concurrent", signed),
      ),
    );
    let answered = first.find(isSuccess) ?? first.find((status) => !shouldRetry(status)) ?? first[0] ?? 0;
    for (let attempt = 1; options.retry5xx && shouldRetry(answered) && attempt < maxAttempts; attempt += 1) {
      await sleep(retryDelayMs);
      answered = await post(index, "retry", signed);
    }
    if (isSuccess(answered)) {
      outcome.ackedAt = Date.now();
      const after = outcome.event.duplicateAfterMs;
      if (after !== undefined) duplicates.push(sleep(after).then(() => post(index, "duplicate", signed)));
    }
  };

  const streams = new Map<string, Promise<void>>();
  const deliveries: Promise<void>[] = [];
  const startedAt = Date.now();
  for (const outcome of outcomes) {
    const dueAt = startedAt + (outcome.event.index * 1000) / options.ratePerSecond;
    const wait = dueAt - Date.now();
    if (wait > 0) await sleep(wait);
    const stream =
      outcome.event.sender ??
      (outcome.event.outboundSid === undefined ? undefined : `out:${outcome.event.outboundSid}`);
    if (stream === undefined) {
      deliveries.push(deliver(outcome));
      continue;
    }
    const next = (streams.get(stream) ?? Promise.resolve()).then(() => deliver(outcome));
    streams.set(stream, next);
    deliveries.push(next);
  }
  await Promise.all(deliveries);
  await Promise.all(duplicates);
  agent.destroy();
  return { startedAt, endedAt: Date.now(), requests: log, outcomes };
};
