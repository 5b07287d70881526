// The traffic plan of a load or fault run, fixed before the first request: which distinct webhook events
// are sent, in which order, and which of them are re-sent as exact duplicates (the same bytes, signature
// and idempotency token, after the first copy was answered) or as concurrent duplicates (several copies
// at once). The mix follows what a Twilio account sends: inbound SMS from many senders (each sender's
// messages numbered, some senders ending with STOP), status callbacks for messages we sent, and
// Conversations post-events. A seeded generator makes the shape repeatable run to run.
import {
  encodeForm,
  type FormParams,
  inboundSmsParams,
  messageAddedParams,
  sid,
  signatureFor,
  statusParams,
  twilioHeaders,
} from "../../lib/local/twilio-webhooks.ts";

export type EventKind = "inbound" | "stop" | "status" | "conversation";

export type PlannedEvent = {
  readonly index: number;
  readonly kind: EventKind;
  readonly path: string;
  readonly params: FormParams;
  /** The dedupe key the webhook derives (README "Event ids"). */
  readonly eventId: string;
  /** inbound/stop: the customer's address and the message's 1-based position in their stream. */
  readonly sender?: string;
  readonly seq?: number;
  /** status: the outbound message the callback reports on, and the status it carries. */
  readonly outboundSid?: string;
  readonly status?: string;
  /** Copies sent at once on the first send (1 = no concurrent duplicate). */
  readonly copies: number;
  /** Send one exact duplicate this long after the first copy was answered. */
  readonly duplicateAfterMs: number | undefined;
};

export type OutboundSeed = { readonly sid: string; readonly to: string };

export type PlanOptions = {
  readonly events: number;
  readonly senders: number;
  readonly accountSid: string;
  readonly ourNumber: string;
  /** Outbound messages created in the emulator beforehand; status callbacks report on them. */
  readonly outbound: readonly OutboundSeed[];
  readonly seed: number;
  /** Share of distinct events re-sent once as an exact duplicate (default 0.1). */
  readonly duplicateShare?: number;
  /** Share of distinct events sent as 3 concurrent copies (default 0.03). */
  readonly concurrentShare?: number;
  /** Share of senders whose last message is STOP (default 0.1). */
  readonly stopShare?: number;
};

/** mulberry32: a tiny seeded PRNG, so a run's shape can be replayed. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** Customer addresses of a run: +1 415 7xx xxxx, distinct per run id so runs never share threads. */
export const senderAddresses = (count: number, runId: number): string[] =>
  Array.from(
    { length: count },
    (_, i) => `+1415${String(runId % 1000).padStart(3, "0")}${String(i).padStart(4, "0")}`,
  );

export const buildPlan = (options: PlanOptions, senders: readonly string[]): PlannedEvent[] => {
  const random = seededRandom(options.seed);
  const duplicateShare = options.duplicateShare ?? 0.1;
  const concurrentShare = options.concurrentShare ?? 0.03;
  const stopShare = options.stopShare ?? 0.1;
  const stopSenders = new Set(senders.slice(0, Math.max(1, Math.round(senders.length * stopShare))));
  const conversations = Array.from({ length: Math.max(2, Math.round(senders.length / 4)) }, () => sid("CH"));
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(random() * items.length)];
    if (item === undefined) throw new Error("cannot pick from an empty list");
    return item;
  };

  type Draft = Omit<PlannedEvent, "index" | "copies" | "duplicateAfterMs">;
  const drafts: Draft[] = [];
  const seqOf = new Map<string, number>();
  const statusesLeft = options.outbound.flatMap((message) =>
    ["sent", "delivered"].map((status) => ({ message, status })),
  );
  const statusShare = 0.15;
  const conversationShare = 0.15;
  const inboundEvents = Math.max(
    senders.length,
    Math.round(options.events * (1 - statusShare - conversationShare)),
  );
  const statusEvents = Math.min(statusesLeft.length, Math.round(options.events * statusShare));
  const conversationEvents = Math.max(0, options.events - inboundEvents - statusEvents);

  const inbound = (sender: string, body: string, kind: "inbound" | "stop"): Draft => {
    const seq = (seqOf.get(sender) ?? 0) + 1;
    seqOf.set(sender, seq);
    const params = inboundSmsParams({
      accountSid: options.accountSid,
      from: sender,
      to: options.ourNumber,
      body: kind === "stop" ? "STOP" : body.replace("{seq}", String(seq)),
      mediaUrls: [],
    });
    return {
      kind,
      path: "/twilio/messaging/inbound",
      params,
      eventId: `msg-in:${params.MessageSid}`,
      sender,
      seq,
    };
  };

  // Every sender sends at least one message; STOP senders end with STOP (appended last below).
  const regularInbound = inboundEvents - stopSenders.size;
  for (let i = 0; i < regularInbound; i += 1) {
    const sender = i < senders.length ? (senders[i] ?? pick(senders)) : pick(senders);
    drafts.push(inbound(sender, `load message #{seq} from ${sender}`, "inbound"));
  }
  for (const { message, status } of statusesLeft.slice(0, statusEvents)) {
    const params = statusParams({
      accountSid: options.accountSid,
      messageSid: message.sid,
      status,
      from: options.ourNumber,
      to: message.to,
    });
    drafts.push({
      kind: "status",
      path: "/twilio/messaging/status",
      params,
      eventId: `msg-status:${message.sid}:${status}`,
      outboundSid: message.sid,
      status,
    });
  }
  for (let i = 0; i < conversationEvents; i += 1) {
    const conversationSid = pick(conversations);
    const params = messageAddedParams({
      accountSid: options.accountSid,
      conversationSid,
      author: `agent-${1 + Math.floor(random() * 5)}`,
      body: `agent reply ${i}`,
      index: i,
    });
    drafts.push({
      kind: "conversation",
      path: "/twilio/conversations",
      params,
      eventId: `onMessageAdded:${String(params.MessageSid)}`,
    });
  }

  // Shuffle, then restore each sender's numbering order and put each outbound's "sent" before its
  // "delivered" (positions are kept; only the items within a stream are re-ordered).
  for (let i = drafts.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const a = drafts[i];
    const b = drafts[j];
    if (a !== undefined && b !== undefined) {
      drafts[i] = b;
      drafts[j] = a;
    }
  }
  const streamKey = (draft: Draft): string | undefined =>
    draft.sender ?? (draft.outboundSid === undefined ? undefined : `out:${draft.outboundSid}`);
  const rank = (draft: Draft): number => draft.seq ?? (draft.status === "delivered" ? 2 : 1);
  const streams = new Map<string, number[]>();
  drafts.forEach((draft, position) => {
    const key = streamKey(draft);
    if (key === undefined) return;
    streams.set(key, [...(streams.get(key) ?? []), position]);
  });
  for (const positions of streams.values()) {
    const ordered = positions
      .flatMap((p) => (drafts[p] === undefined ? [] : [drafts[p]]))
      .sort((a, b) => rank(a) - rank(b));
    positions.forEach((position, i) => {
      const draft = ordered[i];
      if (draft !== undefined) drafts[position] = draft;
    });
  }
  for (const sender of stopSenders) drafts.push(inbound(sender, "STOP", "stop"));

  return drafts.map((draft, index) => ({
    ...draft,
    index,
    copies: random() < concurrentShare ? 3 : 1,
    duplicateAfterMs: random() < duplicateShare ? Math.round(200 + random() * 3000) : undefined,
  }));
};

/** The exact request Twilio would send for an event; duplicates reuse it byte for byte. */
export type SignedRequest = {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
};

export const signedRequest = (
  event: PlannedEvent,
  authToken: string,
  publicBaseUrl: string,
): SignedRequest => ({
  path: event.path,
  headers: twilioHeaders(signatureFor(authToken, `${publicBaseUrl}${event.path}`, event.params)),
  body: encodeForm(event.params),
});
