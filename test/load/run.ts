// One bounded run of signed webhook traffic against the local stack, shared by `npm run load` and the
// fault scenarios: starts the stack (built bundles, DynamoDB Local, fauxqs, Twilio emulator), seeds
// outbound messages for the status callbacks, drives the plan through the HTTP front door, waits for
// every effect (bounded), then checks the guarantees and measures latencies. Everything stays on
// 127.0.0.1. Observation is HTTP (the front door, incl. the onParticipantAdd pre-event for suppressions)
// plus the Twilio emulator's state and the stack's batch reports — never the functions' tables.
import { existsSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import twilio from "twilio";
import { localClients } from "../../lib/local/provision.ts";
import type { LocalStack, LocalStackOptions } from "../../lib/local/stack.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import {
  encodeForm,
  preParticipantAddParams,
  sid,
  signatureFor,
  twilioHeaders,
} from "../../lib/local/twilio-webhooks.ts";
import { buildFunction } from "../../lib/tools/build.ts";
import { percentile } from "../bench/stats.ts";
import { type DriveResult, drive, type EventOutcome } from "./driver.ts";
import { createObserver, type Observer } from "./observer.ts";
import { buildPlan, type PlannedEvent, type SignedRequest, senderAddresses, signedRequest } from "./plan.ts";

export type Check = { readonly name: string; readonly pass: boolean; readonly detail: string };

export type Harness = {
  readonly stack: LocalStack;
  readonly emulator: TwilioEmulator;
  readonly observer: Observer;
  readonly aws: ReturnType<typeof localClients>;
  stop(): Promise<void>;
};

/** Starts the stack the way `npm start` does, but on a free port and watched by an observer. */
export const startHarness = async (
  startLocalStack: (options: LocalStackOptions) => Promise<LocalStack>,
  options: LocalStackOptions = {},
): Promise<Harness> => {
  for (const name of ["webhook", "compliance", "mirror"] as const) {
    if (!existsSync(`dist/functions/${name}/index.mjs`)) await buildFunction(name);
  }
  // The run uses a private copy of the bundles: a rebuild of dist/ meanwhile (another terminal's
  // `npm test`) would otherwise pull the functions out from under it.
  const functionsDir = await mkdtemp(join(tmpdir(), "load-functions-"));
  await cp(join("dist", "functions"), functionsDir, { recursive: true });
  const observer = createObserver();
  const stack = await startLocalStack({
    port: 0,
    schedules: false,
    queueDepthIntervalMs: 0,
    functionsDir,
    ...options,
    console: observer.console,
  }).catch(async (error: unknown) => {
    await rm(functionsDir, { recursive: true, force: true });
    throw error;
  });
  const emulator = stack.twilioEmulator;
  if (emulator === undefined) throw new Error("the load run needs the stack's Twilio emulator");
  observer.watch(emulator);
  const aws = localClients({
    dynamodb: stack.stackInfo.aws.dynamodbEndpoint,
    sqs: stack.stackInfo.aws.sqsEndpoint,
  });
  return {
    stack,
    emulator,
    observer,
    aws,
    stop: async () => {
      observer.stop();
      aws.dynamodb.destroy();
      aws.sqs.destroy();
      await stack.stop();
      await rm(functionsDir, { recursive: true, force: true });
    },
  };
};

export type TrafficOptions = {
  readonly events: number;
  readonly senders: number;
  readonly ratePerSecond: number;
  readonly seed: number;
  /** Re-send a 5xx like Twilio's retries would (fault runs); a load run counts any 5xx as a failure. */
  readonly retry5xx: boolean;
  /** How long to wait for every effect after the last request. */
  readonly drainTimeoutMs: number;
  readonly duplicateShare?: number;
  readonly concurrentShare?: number;
  /** Runs alongside the traffic (a fault scenario's script); awaited before draining. */
  readonly during?: (startedAt: number) => Promise<void>;
};

export type TrafficResult = {
  readonly plan: readonly PlannedEvent[];
  readonly drive: DriveResult;
  /** When each STOP sender was first seen suppressed through the front door. */
  readonly suppressedAt: ReadonlyMap<string, number>;
  readonly drainedAt: number | undefined;
  readonly queues: QueueTotals;
  readonly dlqEventIds: readonly string[];
};

export type QueueTotals = { readonly visible: number; readonly inFlight: number; readonly dlq: number };

let runCounter = 0;

const post = async (baseUrl: string, request: SignedRequest): Promise<number> => {
  try {
    const response = await fetch(`${baseUrl}${request.path}`, {
      method: "POST",
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
};

/** Queue depths of the work queues and their DLQs. */
export const queueTotals = async (harness: Harness): Promise<QueueTotals> => {
  const { queues, deadLetterQueues } = harness.stack.stackInfo.aws;
  const depth = async (url: string) => {
    const { Attributes = {} } = await harness.aws.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return {
      visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  };
  let visible = 0;
  let inFlight = 0;
  let dlq = 0;
  for (const url of Object.values(queues)) {
    const d = await depth(url);
    visible += d.visible;
    inFlight += d.inFlight;
  }
  for (const url of Object.values(deadLetterQueues)) {
    const d = await depth(url);
    dlq += d.visible + d.inFlight;
  }
  return { visible, inFlight, dlq };
};

/** Reads (without deleting for good: visibility 0) the event ids of everything in the DLQs. */
export const dlqEventIds = async (harness: Harness): Promise<string[]> => {
  const ids: string[] = [];
  for (const url of Object.values(harness.stack.stackInfo.aws.deadLetterQueues)) {
    const seen = new Set<string>();
    for (let round = 0; round < 20; round += 1) {
      const { Messages = [] } = await harness.aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 30,
          WaitTimeSeconds: 0,
        }),
      );
      if (Messages.length === 0) break;
      for (const message of Messages) {
        if (message.MessageId === undefined || seen.has(message.MessageId)) continue;
        seen.add(message.MessageId);
        let id = `unparsable:${message.MessageId}`;
        try {
          const parsed: unknown = JSON.parse(message.Body ?? "");
          const eventId =
            typeof parsed === "object" && parsed !== null ? Reflect.get(parsed, "eventId") : undefined;
          if (typeof eventId === "string") id = eventId;
        } catch {
          // A body that is not JSON is reported by its message id.
        }
        ids.push(id);
      }
    }
  }
  return ids;
};

/** Whether an event's effect is visible: a mirrored copy, a suppression, or a consumed record. */
export const effectObserved = (
  event: PlannedEvent,
  observer: Observer,
  suppressedAt: ReadonlyMap<string, number>,
): boolean => {
  switch (event.kind) {
    case "inbound":
      return (observer.copies.get(String(event.params.MessageSid)) ?? []).length > 0;
    case "stop":
      return event.sender !== undefined && suppressedAt.has(event.sender);
    case "status":
      return (
        observer.consumedCount("mirror", event.eventId) > 0 &&
        event.outboundSid !== undefined &&
        (observer.copies.has(event.outboundSid) || observer.summaries.has(event.outboundSid))
      );
    case "conversation":
      return observer.consumedCount("mirror", event.eventId) > 0;
  }
};

export const runTraffic = async (harness: Harness, options: TrafficOptions): Promise<TrafficResult> => {
  runCounter += 1;
  const { stack, observer } = harness;
  const { accountSid, authToken } = stack.stackInfo.twilio;
  const ourNumber = stack.stackInfo.twilio.phoneNumbers[0] ?? "+15005550006";
  const publicBase = stack.stackInfo.publicWebhookBaseUrl;
  const senders = senderAddresses(options.senders, (process.pid + runCounter * 7919) % 1000);

  // Outbound messages the status callbacks report on, sent through the emulator's REST API.
  const sdk = twilio(accountSid, authToken, { autoRetry: false });
  sdk.api.baseUrl = harness.emulator.url;
  sdk.conversations.baseUrl = harness.emulator.url;
  const outbound = [];
  for (const to of senders.slice(0, Math.max(2, Math.round(options.senders / 4)))) {
    const message = await sdk.messages.create({
      to,
      from: ourNumber,
      body: `Your order ${to.slice(-4)} shipped`,
    });
    outbound.push({ sid: message.sid, to });
  }

  const plan = buildPlan(
    {
      events: options.events,
      senders: options.senders,
      accountSid,
      ourNumber,
      outbound,
      seed: options.seed,
      ...(options.duplicateShare === undefined ? {} : { duplicateShare: options.duplicateShare }),
      ...(options.concurrentShare === undefined ? {} : { concurrentShare: options.concurrentShare }),
    },
    senders,
  );
  const requests = new Map(plan.map((event) => [event.index, signedRequest(event, authToken, publicBase)]));

  // A STOP takes effect when the front door refuses to add that person to a conversation.
  const suppressedAt = new Map<string, number>();
  const probeConversation = sid("CH");
  const probes: Promise<void>[] = [];
  const watchSuppression = (sender: string, deadline: number) =>
    (async () => {
      const params = preParticipantAddParams({
        accountSid,
        conversationSid: probeConversation,
        address: sender,
        proxy: ourNumber,
      });
      const probe: SignedRequest = {
        path: "/twilio/conversations",
        headers: twilioHeaders(signatureFor(authToken, `${publicBase}/twilio/conversations`, params)),
        body: encodeForm(params),
      };
      while (Date.now() < deadline) {
        if ((await post(stack.apiUrl, probe)) === 403) {
          suppressedAt.set(sender, Date.now());
          return;
        }
        await sleep(50);
      }
    })();

  const plannedSeconds = plan.length / options.ratePerSecond;
  const probeDeadline = Date.now() + plannedSeconds * 1000 + options.drainTimeoutMs + 60_000;
  let stopsWatched = false;
  const drivePromise = drive(plan, requests, {
    baseUrl: stack.apiUrl,
    ratePerSecond: options.ratePerSecond,
    retry5xx: options.retry5xx,
  });
  const startedAt = Date.now();
  const duringPromise = options.during?.(startedAt) ?? Promise.resolve();
  // Probe once each STOP has been sent (they come last in the plan).
  const stopSenders = plan.filter((event) => event.kind === "stop" && event.sender !== undefined);
  const startProbes = async () => {
    while (!stopsWatched) {
      await sleep(100);
      if (Date.now() - startedAt > ((plan.length - stopSenders.length) * 1000) / options.ratePerSecond) {
        stopsWatched = true;
        for (const event of stopSenders)
          if (event.sender) probes.push(watchSuppression(event.sender, probeDeadline));
      }
    }
  };
  const [driveResult] = await Promise.all([drivePromise, duringPromise, startProbes()]);

  const acked = driveResult.outcomes.filter((outcome) => outcome.ackedAt !== undefined);
  const drainDeadline = Date.now() + options.drainTimeoutMs;
  let drainedAt: number | undefined;
  while (Date.now() < drainDeadline) {
    observer.poll();
    if (acked.every((outcome) => effectObserved(outcome.event, observer, suppressedAt))) {
      drainedAt = Date.now();
      break;
    }
    await sleep(200);
  }
  await Promise.race([Promise.all(probes), sleep(Math.max(0, drainDeadline - Date.now()))]);
  // Let the queues settle: nothing visible or in flight (a record being retried is in flight).
  let queues = await queueTotals(harness);
  while (Date.now() < drainDeadline + 15_000 && queues.visible + queues.inFlight > 0) {
    await sleep(500);
    queues = await queueTotals(harness);
  }
  observer.poll();
  return {
    plan,
    drive: driveResult,
    suppressedAt,
    drainedAt,
    queues,
    dlqEventIds: queues.dlq > 0 ? await dlqEventIds(harness) : [],
  };
};

// ---- Checks -------------------------------------------------------------------------------------------

const check = (name: string, failures: readonly string[], ok: string): Check => ({
  name,
  pass: failures.length === 0,
  detail:
    failures.length === 0
      ? ok
      : `${failures.length} failing: ${failures.slice(0, 5).join("; ")}${failures.length > 5 ? "; …" : ""}`,
});

/** Per-sender order: each sender's mirrored messages sit in one thread in the order they were sent. */
const orderFailures = (plan: readonly PlannedEvent[], observer: Observer): string[] => {
  const bySender = new Map<string, PlannedEvent[]>();
  for (const event of plan) {
    if (event.kind !== "inbound" || event.sender === undefined) continue;
    bySender.set(event.sender, [...(bySender.get(event.sender) ?? []), event]);
  }
  const failures: string[] = [];
  for (const [sender, events] of bySender) {
    const positions = events
      .sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
      .map((event) => observer.copies.get(String(event.params.MessageSid))?.[0])
      .filter((copy) => copy !== undefined);
    for (let i = 1; i < positions.length; i += 1) {
      const previous = positions[i - 1];
      const current = positions[i];
      if (previous === undefined || current === undefined) continue;
      if (previous.conversationSid === current.conversationSid && previous.index > current.index) {
        failures.push(`${sender}: message ${i + 1} is before message ${i}`);
        break;
      }
    }
  }
  return failures;
};

/** What the mirror logged about a Messaging SID: each record's outcome, or its failure reason. */
const mirrorOutcomes = (observer: Observer, messageSid: string): string => {
  const outcomes = observer.logs
    .filter((log) => log.functionName === "mirror" && log.line.includes(messageSid))
    .map((log) => {
      const eventId = /"eventId":"[^"]*?:(\w+)"/.exec(log.line)?.[1] ?? "?";
      const outcome = /"(?:outcome|reason)":"([^"]*)"/.exec(log.line)?.[1] ?? "?";
      return `${eventId}→${outcome}`;
    });
  return outcomes.length === 0 ? "the mirror logged nothing about it" : outcomes.join(", ");
};

export type CheckOptions = {
  /** Whether a 5xx answered at `at` is acceptable (a dependency was down then); default: never. */
  readonly allow5xx?: (startedAt: number, endedAt: number) => boolean;
  /** Event ids deliberately put on a queue outside the webhook (a poison record). */
  readonly injected?: readonly string[];
  /** Records consumed exactly once (no fault forces a redelivery of a successful record). */
  readonly strictConsumption?: boolean;
};

export const checkRun = (result: TrafficResult, observer: Observer, options: CheckOptions = {}): Check[] => {
  const { plan, drive: driven } = result;
  const outcomes = driven.outcomes;
  const allow5xx = options.allow5xx ?? (() => false);
  const injected = options.injected ?? [];
  const acked = outcomes.filter((outcome) => outcome.ackedAt !== undefined);
  const checks: Check[] = [];

  const unanswered = driven.requests.filter((request) => request.status === 0);
  const badStatus = driven.requests.filter(
    (request) => request.status >= 500 && !allow5xx(request.startedAt, request.endedAt),
  );
  const clientErrors = driven.requests.filter((request) => request.status >= 400 && request.status < 500);
  checks.push(
    check(
      options.allow5xx === undefined
        ? "front door: no 5xx, no 4xx, no dropped request"
        : "front door: 5xx only while a dependency is down",
      [
        ...(badStatus.length > 0
          ? [
              `gateway said: ${[...new Set(observer.gatewayErrors.map((e) => e.reason))].slice(0, 3).join(" | ")}`,
            ]
          : []),
        ...badStatus.map((r) => `event ${r.event} got ${r.status} at +${r.startedAt - driven.startedAt} ms`),
        ...clientErrors.map((r) => `event ${r.event} got ${r.status}`),
        ...(options.allow5xx === undefined ? unanswered.map((r) => `event ${r.event} got no answer`) : []),
      ],
      `${driven.requests.length} requests answered`,
    ),
  );
  checks.push(
    check(
      "every distinct event acknowledged (2xx) in the end",
      outcomes.filter((o) => o.ackedAt === undefined).map((o) => `${o.event.kind} ${o.event.eventId}`),
      `${acked.length}/${outcomes.length}`,
    ),
  );

  // Acknowledged ⇒ enqueued: the consumer of the event's first queue received and finished it.
  const firstQueue = (event: PlannedEvent) =>
    event.kind === "inbound" || event.kind === "stop" ? "consent" : "mirror";
  checks.push(
    check(
      "nothing acknowledged that was not enqueued (its queue's consumer got each acked event)",
      acked
        .filter((o) => !observer.received(firstQueue(o.event), o.event.eventId))
        .map((o) => `${o.event.kind} ${o.event.eventId}`),
      `${acked.length} acked events all received by their consumer`,
    ),
  );

  const missingEffects = acked.filter((o) => !effectObserved(o.event, observer, result.suppressedAt));
  checks.push(
    check(
      "every acknowledged event took effect (mirrored / suppressed / consumed)",
      missingEffects.map((o) => `${o.event.kind} ${o.event.eventId}`),
      result.drainedAt === undefined
        ? "all observed"
        : `all observed ${result.drainedAt - driven.endedAt} ms after the last request`,
    ),
  );

  // Exactly once in effect.
  const duplicatePosts = [...observer.copies.entries()].filter(([, copies]) => copies.length > 1);
  checks.push(
    check(
      "no duplicate posts (each Messaging SID mirrored at most once)",
      duplicatePosts.map(
        ([messageSid, copies]) =>
          `${messageSid} ×${copies.length} (at ${copies.map((c) => `${c.conversationSid}#${c.index}`).join(", ")}; mirror consumed its record ×${observer.consumedCount("mirror", `msg-in:${messageSid}`)})`,
      ),
      `${observer.copies.size} mirrored copies, none twice`,
    ),
  );
  const stopMirrored = plan.filter(
    (e) => e.kind === "stop" && observer.copies.has(String(e.params.MessageSid)),
  );
  checks.push(
    check(
      "STOP took effect (suppression enforced at the front door) and was not mirrored",
      [
        ...stopMirrored.map((e) => `STOP ${e.eventId} was mirrored`),
        ...plan
          .filter((e) => e.kind === "stop" && e.sender !== undefined && !result.suppressedAt.has(e.sender))
          .map((e) => `${e.sender} not suppressed`),
      ],
      `${result.suppressedAt.size} suppressions`,
    ),
  );
  // An outbound shows up once: as a system copy in the thread, or — when the customer is bound in the
  // thread, so a copy would reach them twice — as an `outboundNotMirrored` entry; never both, never
  // neither; and it ends at the best status it was told about.
  const finalStatus = new Map<string, string>();
  for (const e of plan)
    if (e.outboundSid !== undefined && e.status === "delivered") finalStatus.set(e.outboundSid, "delivered");
  for (const e of plan)
    if (e.outboundSid !== undefined && !finalStatus.has(e.outboundSid))
      finalStatus.set(e.outboundSid, e.status ?? "sent");
  const outboundFailures = [...finalStatus.entries()].flatMap(([messageSid, expected]) => {
    const posted = observer.copies.has(messageSid);
    const listed = observer.summaries.has(messageSid);
    if (!posted && !listed)
      return [`outbound ${messageSid} neither posted nor listed (${mirrorOutcomes(observer, messageSid)})`];
    if (posted && listed) return [`outbound ${messageSid} both posted and listed`];
    const status = observer.currentStatus(messageSid);
    return status === expected
      ? []
      : [`outbound ${messageSid} shows ${status ?? "no status"}, expected ${expected}`];
  });
  const postedCount = [...finalStatus.keys()].filter((sid) => observer.copies.has(sid)).length;
  checks.push(
    check(
      "each outbound shows up once (posted, or listed when the customer is bound) at its best status",
      outboundFailures,
      `${finalStatus.size} outbound: ${postedCount} posted, ${finalStatus.size - postedCount} listed on the thread`,
    ),
  );
  if (options.strictConsumption === true) {
    const twice = acked.flatMap((o) => {
      const queues = o.event.kind === "inbound" ? ["consent", "mirror"] : [firstQueue(o.event)];
      return queues
        .filter((queue) => observer.consumedCount(queue, o.event.eventId) > 1)
        .map((queue) => `${o.event.eventId} on ${queue} ×${observer.consumedCount(queue, o.event.eventId)}`);
    });
    checks.push(
      check("every distinct event consumed exactly once per queue", twice, "no record processed twice"),
    );
  }
  checks.push(
    check(
      "per-sender order kept",
      orderFailures(plan, observer),
      `${new Set(plan.map((e) => e.sender)).size - 1} senders in order`,
    ),
  );

  const retained = observer.batches.reduce((total, batch) => total + batch.retained, 0);
  const expectedDlq = new Set(injected);
  const unexpectedDlq = result.dlqEventIds.filter((id) => !expectedDlq.has(id));
  checks.push(
    check(
      "retries drained: queues empty, DLQ holds only what was meant to fail",
      [
        ...(result.queues.visible + result.queues.inFlight > 0
          ? [`${result.queues.visible} visible + ${result.queues.inFlight} in flight left`]
          : []),
        ...unexpectedDlq.map((id) => `${id} in a DLQ`),
        ...injected.filter((id) => !result.dlqEventIds.includes(id)).map((id) => `${id} not in a DLQ`),
      ],
      `${retained} record retries along the way, ${result.queues.dlq} in DLQ`,
    ),
  );

  const processed = acked.filter((o) => effectObserved(o.event, observer, result.suppressedAt)).length;
  const eventsIn = acked.length + injected.length;
  checks.push(
    check(
      "totals reconcile: events in = events processed + events in the DLQ",
      eventsIn === processed + result.dlqEventIds.length
        ? []
        : [`${eventsIn} in ≠ ${processed} processed + ${result.dlqEventIds.length} in DLQ`],
      `${eventsIn} in = ${processed} processed + ${result.dlqEventIds.length} in DLQ`,
    ),
  );
  return checks;
};

// ---- Measurements ---------------------------------------------------------------------------------------

export type Latencies = {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
};

const summarize = (values: readonly number[]): Latencies => ({
  count: values.length,
  p50: percentile(values, 50),
  p95: percentile(values, 95),
  p99: percentile(values, 99),
});

export const measure = (result: TrafficResult, observer: Observer) => {
  const { drive: driven } = result;
  const frontDoor = summarize(driven.requests.map((r) => r.endedAt - r.startedAt));
  const e2e = (kind: PlannedEvent["kind"], effectAt: (outcome: EventOutcome) => number | undefined) =>
    summarize(
      driven.outcomes.flatMap((outcome) => {
        if (outcome.event.kind !== kind || outcome.firstSentAt === undefined) return [];
        const at = effectAt(outcome);
        return at === undefined ? [] : [at - outcome.firstSentAt];
      }),
    );
  const copyAt = (messageSid: string | undefined) =>
    messageSid === undefined ? undefined : observer.copies.get(messageSid)?.[0]?.seenAt;
  const lastRequestAt = Math.max(...driven.requests.map((r) => r.endedAt));
  const seconds = (lastRequestAt - driven.startedAt) / 1000;
  return {
    requests: driven.requests.length,
    seconds,
    throughput: driven.requests.length / seconds,
    frontDoor,
    mirrored: e2e("inbound", (o) => copyAt(String(o.event.params.MessageSid))),
    outboundStatus: e2e("status", (o) =>
      o.event.status === "sent" && o.event.outboundSid !== undefined
        ? (copyAt(o.event.outboundSid) ?? observer.summaries.get(o.event.outboundSid)?.seenAt)
        : undefined,
    ),
    suppression: e2e("stop", (o) =>
      o.event.sender === undefined ? undefined : result.suppressedAt.get(o.event.sender),
    ),
  };
};

export const printChecks = (
  checks: readonly Check[],
  write: (line: string) => void = console.log,
): boolean => {
  for (const c of checks) write(`  ${c.pass ? "PASS" : "FAIL"}  ${c.name} — ${c.detail}`);
  return checks.every((c) => c.pass);
};
