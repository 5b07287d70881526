// The compliance use case: consumes the consent queue (FIFO, per-sender order), enforces opt-out/opt-in/
// help across SMS and WhatsApp, keeps evidence, and gates what reaches the mirror. Ports are shaped by
// what this use case needs; DynamoDB and Twilio live behind them.
//
// Gate: intake sends every inbound Messaging webhook only to the consent queue; this use case forwards
// it to the mirror queue unless the sender is suppressed or the message is a keyword. Keyword messages
// are answered here and not mirrored (mirroring STOP would re-open a thread for a person who just left
// it, START must not silently re-add anyone); agents learn about an opt-out from the system message
// posted into each affected conversation instead.

import type { ComplianceSettings, ComplianceSettingsLookup } from "../config/compliance-config.ts";
import {
  type Channel,
  type ConsentAction,
  type ConsentChange,
  type ConsentDecision,
  type ConsentRecord,
  type ConsentSubject,
  type InboundSignal,
  InvalidConsentEventError,
  type OptedOutFailureSignal,
  parseChannelAddress,
  readConsentSignal,
  type Sender,
  type SuppressionState,
  scopeFor,
  suppressionFor,
  twilioAddress,
} from "../domain/consent.ts";
import type { KeywordMatch } from "../domain/keywords.ts";
import type { Envelope } from "../domain/queue-envelope.ts";
import { type TenantDirectory, tenantFor } from "../domain/tenants.ts";
import { classifyTwilioFailure, TwilioApiError } from "../domain/twilio-errors.ts";
import type { EventQueue } from "./ports.ts";
import { withRetry } from "./retry.ts";
import { isPoison, processFifoBatch, type QueueRecord, type RecordOutcome } from "./sqs-batch.ts";

// ---- Ports -------------------------------------------------------------------------------------------

export interface ConsentStore {
  /** Every scope's state for one person (one read), for "is this sender allowed to reach them?". */
  states(subject: ConsentSubject): Promise<readonly SuppressionState[]>;
  /**
   * Offers a change to one scope's state. Atomic and monotonic in event time (see `applyConsentChange`):
   * an older event or a replay never overwrites a newer decision.
   */
  apply(subject: ConsentSubject, scope: string, change: ConsentChange): Promise<ConsentDecision>;
  /**
   * Writes the evidence record once (a replay leaves the first one untouched) and returns the effects
   * already completed for this event, so a retried record does not repeat them.
   */
  record(record: ConsentRecord): Promise<{ readonly effectsDone: ReadonlySet<string> }>;
  /** Notes that one effect of a recorded event is done (e.g. "confirmed", "removed:CH…"). */
  markDone(record: ConsentRecord, effect: string): Promise<void>;
}

/** A person's SMS/WhatsApp participant in a conversation that is not closed. */
export type ParticipantBinding = {
  readonly conversationSid: string;
  readonly participantSid: string;
  /** The person's address in Twilio form ("+1…", "whatsapp:+1…"). */
  readonly address: string | undefined;
  /** Our number in Twilio form. */
  readonly proxyAddress: string | undefined;
  readonly messagingServiceSid: string | undefined;
};

export interface ConsentMessaging {
  /** Every non-closed conversation where `address` (Twilio form) is a participant, as Twilio lists them. */
  conversationsOf(address: string): Promise<readonly ParticipantBinding[]>;
  /** One participant's binding, or undefined once it no longer exists. */
  participant(conversationSid: string, participantSid: string): Promise<ParticipantBinding | undefined>;
  /** "already-gone" when Twilio answers 20404: someone (or an earlier attempt) removed it. */
  removeParticipant(conversationSid: string, participantSid: string): Promise<"removed" | "already-gone">;
  /** A message authored by "system" that agents see in the conversation. */
  postNotice(
    conversationSid: string,
    body: string,
    attributes: Readonly<Record<string, unknown>>,
  ): Promise<void>;
  /** "blocked" when Twilio answers 21610: it already blocks this sender and sent its own reply. */
  sendText(message: {
    readonly from: string;
    readonly to: string;
    readonly body: string;
  }): Promise<"sent" | "blocked">;
}

export type ComplianceDeps = {
  readonly tenants: TenantDirectory;
  readonly settings: ComplianceSettingsLookup;
  readonly store: ConsentStore;
  readonly twilio: ConsentMessaging;
  /** Only `send("mirror", …)` is used: forwarding gated inbound messages. */
  readonly queue: EventQueue;
  readonly now: () => number;
  readonly retry: {
    readonly attempts: number;
    readonly baseDelayMs: number;
    readonly maxDelayMs: number;
    readonly sleep?: (ms: number) => Promise<void>;
    readonly random?: () => number;
  };
};

export type RunContext = {
  readonly receiveCount: number;
  /** Time left in this invocation; retries stop before they would outlive it. */
  readonly remainingMs: () => number;
};

// ---- Reports -----------------------------------------------------------------------------------------

export type ComplianceAction =
  | "suppressed"
  | "unsuppressed"
  | "participant-removed"
  | "agent-notified"
  | "confirmation-sent"
  | "reply-blocked-by-twilio"
  | "help-sent"
  | "forwarded-to-mirror"
  | "inbound-dropped";

/** What happened to one record; the handler logs it (addresses masked, never bodies). */
export type ConsentReport = {
  readonly outcome:
    | "forwarded"
    | "pass"
    | "no-keyword"
    | "suppressed-inbound"
    | "opted-out"
    | "opted-in"
    | "superseded"
    | "help"
    | "unresolved";
  readonly reason?: string;
  readonly tenant?: string;
  readonly channel?: Channel;
  readonly address?: string;
  readonly intent?: string;
  readonly keyword?: string;
  readonly decision?: ConsentDecision["outcome"];
  readonly actions: readonly ComplianceAction[];
};

// ---- Use case ----------------------------------------------------------------------------------------

type Work = { readonly deps: ComplianceDeps; readonly run: RunContext; readonly actions: ComplianceAction[] };

const twilioCall = <T>(work: Work, call: () => Promise<T>): Promise<T> =>
  withRetry(call, {
    ...work.deps.retry,
    isRetryable: (error) => classifyTwilioFailure(error) === "retryable",
    remainingMs: work.run.remainingMs,
  });

const forward = async (work: Work, envelope: Envelope): Promise<void> => {
  const from = envelope.params.From;
  const groupFrom = typeof from === "string" ? from : (from?.[0] ?? envelope.eventId);
  // Same event id as SQS deduplication id and the same group as intake used, so a retried forward
  // inside SQS's five-minute window is dropped and the mirror sees this person's messages in order.
  await work.deps.queue.send("mirror", {
    body: JSON.stringify({ ...envelope, forwardedBy: "compliance" }),
    groupKey: `addr:${groupFrom}`,
    deduplicationId: envelope.eventId,
  });
  work.actions.push("forwarded-to-mirror");
};

export const handleConsentEnvelope = async (
  deps: ComplianceDeps,
  envelope: Envelope,
  run: RunContext,
): Promise<ConsentReport> => {
  const work: Work = { deps, run, actions: [] };
  const signal = readConsentSignal(envelope);
  switch (signal.kind) {
    case "pass":
      if (envelope.kind === "messaging.inbound") {
        await forward(work, envelope);
        return { outcome: "forwarded", reason: signal.reason, actions: work.actions };
      }
      return { outcome: "pass", reason: signal.reason, actions: work.actions };
    case "inbound":
      return handleInbound(work, envelope, signal);
    case "opted-out-failure":
      return handleOptedOutFailure(work, signal);
  }
};

const tenantOf = (deps: ComplianceDeps, channel: Channel, sender: Sender): string =>
  tenantFor(deps.tenants, {
    to: sender.proxy === undefined ? undefined : twilioAddress(channel, sender.proxy),
    messagingServiceSid: sender.messagingServiceSid,
  });

const handleInbound = async (
  work: Work,
  envelope: Envelope,
  signal: InboundSignal,
): Promise<ConsentReport> => {
  const { deps } = work;
  // Conversations events name the Messaging Service, not our number. When the tenant directory maps
  // numbers but not that service, our number is read from the participant first, so this use case and
  // the pre-event check (which sees only the number) agree on the tenant.
  const known = signal.sender;
  const needsNumber =
    known.proxy === undefined &&
    (known.messagingServiceSid === undefined ||
      deps.tenants.senders[known.messagingServiceSid] === undefined) &&
    Object.keys(deps.tenants.senders).length > 0;
  const early = needsNumber ? await senderOf(work, signal) : known;
  const tenant = tenantOf(deps, signal.channel, early);
  const settings = deps.settings(tenant);
  const subject: ConsentSubject = { tenant, channel: signal.channel, address: signal.address };
  const base = { tenant, channel: signal.channel, address: signal.address };
  const match = settings.keywords.classify(signal.body, signal.optOutType);

  if (match === undefined) {
    const suppressed = suppressionFor(await deps.store.states(subject), early);
    if (suppressed !== undefined) {
      await deps.store.record(
        recordOf(
          deps,
          settings,
          subject,
          "inbound-while-suppressed",
          signal,
          undefined,
          suppressed.scope,
          early,
        ),
      );
      work.actions.push("inbound-dropped");
      return { ...base, outcome: "suppressed-inbound", actions: work.actions };
    }
    if (signal.source === "messaging-inbound") {
      await forward(work, envelope);
      return { ...base, outcome: "forwarded", actions: work.actions };
    }
    // Conversations already holds this message; the mirror gets its event straight from intake.
    return { ...base, outcome: "no-keyword", actions: work.actions };
  }

  const sender = needsNumber ? early : await senderOf(work, signal);
  const keywordReport = { ...base, intent: match.intent, keyword: match.keyword };
  if (match.intent === "help") {
    await reply(work, { settings, ...subject, sender, match, body: settings.helpText, action: "help-sent" });
    return { ...keywordReport, outcome: "help", actions: work.actions };
  }
  const action: ConsentAction = match.intent;
  const scope = scopeFor(settings.scope, sender);
  const record = recordOf(deps, settings, subject, action, signal, match, scope, sender);
  const { effectsDone } = await deps.store.record(record);
  const decision = await deps.store.apply(subject, scope, {
    action,
    eventAt: signal.eventAt,
    eventId: signal.eventId,
    keyword: match.keyword,
    source: signal.source,
  });
  const report = { ...keywordReport, decision: decision.outcome };
  if (decision.outcome === "superseded") return { ...report, outcome: "superseded", actions: work.actions };

  const effects: Effects = { subject, sender, scope, record, effectsDone };
  if (action === "opt-out") {
    if (decision.outcome === "applied") work.actions.push("suppressed");
    await removeFromConversations(work, effects, match);
    if (decision.statusChanged && !effectsDone.has("confirmed")) {
      await reply(work, {
        settings,
        ...subject,
        sender,
        match,
        body: settings.optOutConfirmation,
        action: "confirmation-sent",
      });
      await deps.store.markDone(record, "confirmed");
    }
    return { ...report, outcome: "opted-out", actions: work.actions };
  }
  if (decision.outcome === "applied") work.actions.push("unsuppressed");
  if (decision.statusChanged && !effectsDone.has("confirmed")) {
    // A STOP processed concurrently (another ingress path) may already have re-suppressed this person.
    const stillSuppressed = suppressionFor(await deps.store.states(subject), sender);
    if (stillSuppressed === undefined) {
      await reply(work, {
        settings,
        ...subject,
        sender,
        match,
        body: settings.optInConfirmation,
        action: "confirmation-sent",
      });
    }
    await deps.store.markDone(record, "confirmed");
  }
  return { ...report, outcome: "opted-in", actions: work.actions };
};

/** For Conversations messages, our number comes from the participant's binding (one Twilio read). */
const senderOf = async (work: Work, signal: InboundSignal): Promise<Sender> => {
  if (
    signal.sender.proxy !== undefined ||
    signal.conversationSid === undefined ||
    signal.participantSid === undefined
  ) {
    return signal.sender;
  }
  const { conversationSid, participantSid } = signal;
  const binding = await twilioCall(work, () => work.deps.twilio.participant(conversationSid, participantSid));
  return {
    proxy: parseChannelAddress(binding?.proxyAddress)?.address,
    messagingServiceSid: signal.sender.messagingServiceSid ?? binding?.messagingServiceSid,
  };
};

const handleOptedOutFailure = async (work: Work, signal: OptedOutFailureSignal): Promise<ConsentReport> => {
  const { deps } = work;
  let recipient = signal.recipient;
  let sender = signal.sender;
  if (
    recipient === undefined &&
    signal.conversationSid !== undefined &&
    signal.participantSid !== undefined
  ) {
    const { conversationSid, participantSid } = signal;
    const binding = await twilioCall(work, () => deps.twilio.participant(conversationSid, participantSid));
    recipient = parseChannelAddress(binding?.address);
    sender = {
      proxy: parseChannelAddress(binding?.proxyAddress)?.address,
      messagingServiceSid: sender.messagingServiceSid ?? binding?.messagingServiceSid,
    };
  }
  if (recipient === undefined) {
    // The participant is gone and the receipt never named an address: nobody left to protect here.
    return { outcome: "unresolved", reason: "participant no longer exists", actions: work.actions };
  }
  const tenant = tenantOf(deps, recipient.channel, sender);
  const settings = deps.settings(tenant);
  const subject: ConsentSubject = { tenant, ...recipient };
  const scope = scopeFor(settings.scope, sender);
  const record = recordOf(deps, settings, subject, "opt-out", signal, undefined, scope, sender);
  const { effectsDone } = await deps.store.record(record);
  const decision = await deps.store.apply(subject, scope, {
    action: "opt-out",
    eventAt: signal.eventAt,
    eventId: signal.eventId,
    keyword: undefined,
    source: signal.source,
  });
  const report = { tenant, ...recipient, intent: "opt-out", decision: decision.outcome };
  if (decision.outcome === "superseded") return { ...report, outcome: "superseded", actions: work.actions };
  if (decision.outcome === "applied") work.actions.push("suppressed");
  // No confirmation: the person replied STOP to Twilio earlier and Twilio already answered them.
  await removeFromConversations(work, { subject, sender, scope, record, effectsDone }, undefined);
  return { ...report, outcome: "opted-out", actions: work.actions };
};

// ---- Effects -----------------------------------------------------------------------------------------

type Effects = {
  readonly subject: ConsentSubject;
  readonly sender: Sender;
  readonly scope: string;
  readonly record: ConsentRecord;
  readonly effectsDone: ReadonlySet<string>;
};

const channelLabel = (channel: Channel) => (channel === "whatsapp" ? "WhatsApp" : "SMS");

const noticeText = (channel: Channel, match: KeywordMatch | undefined): string =>
  match === undefined
    ? `Compliance: messages to this ${channelLabel(channel)} customer fail with Twilio error 21610 (they replied STOP). They were removed from this conversation and will not be contacted from this sender unless they reply START.`
    : `Compliance: the ${channelLabel(channel)} customer replied ${match.keyword} and opted out. They were removed from this conversation and will not be contacted from this sender unless they reply START.`;

/**
 * Removes the person's participant from every non-closed conversation bound to their address and to a
 * sender the suppression covers, as Twilio lists them (not from our own registry, which may lag), and
 * tells agents why in each. Each step is marked on the record so a retry only does what is left.
 */
const removeFromConversations = async (work: Work, effects: Effects, match: KeywordMatch | undefined) => {
  const { deps } = work;
  const { subject, sender, scope, record, effectsDone } = effects;
  const personAddress = twilioAddress(subject.channel, subject.address);
  const bindings = await twilioCall(work, () => deps.twilio.conversationsOf(personAddress));
  const covered = bindings.filter(
    (binding) =>
      scope === "*" ||
      (sender.proxy !== undefined && parseChannelAddress(binding.proxyAddress)?.address === sender.proxy) ||
      (sender.messagingServiceSid !== undefined &&
        binding.messagingServiceSid === sender.messagingServiceSid),
  );
  const toNotify = new Set<string>();
  for (const effect of effectsDone) {
    if (effect.startsWith("removed:")) toNotify.add(effect.slice("removed:".length));
  }
  for (const binding of covered) {
    const result = await twilioCall(work, () =>
      deps.twilio.removeParticipant(binding.conversationSid, binding.participantSid),
    );
    if (result === "removed") work.actions.push("participant-removed");
    await deps.store.markDone(record, `removed:${binding.conversationSid}`);
    toNotify.add(binding.conversationSid);
  }
  for (const conversationSid of toNotify) {
    if (effectsDone.has(`notified:${conversationSid}`)) continue;
    await twilioCall(work, () =>
      deps.twilio.postNotice(conversationSid, noticeText(subject.channel, match), {
        kind: "compliance",
        action: "opt-out",
        channel: subject.channel,
        keyword: match?.keyword ?? null,
        reason: match === undefined ? "error-21610" : "keyword",
        eventId: record.eventId,
      }),
    );
    await deps.store.markDone(record, `notified:${conversationSid}`);
    work.actions.push("agent-notified");
  }
};

/**
 * Whether we answer a keyword ourselves. WhatsApp: always (Twilio sends nothing there). SMS: Twilio
 * already answered its default keywords and any Advanced Opt-Out keyword (`OptOutType` set), so we only
 * add our reply when configured to, or when Twilio cannot have recognised the word (an extra language).
 */
export const shouldReply = (channel: Channel, match: KeywordMatch, settings: ComplianceSettings): boolean => {
  if (channel === "whatsapp" || settings.smsConfirmations) return true;
  if (match.decidedBy === "twilio-opt-out-type") return false;
  return !settings.keywords.isTwilioDefault(match.intent, match.keyword);
};

/**
 * Sends a keyword reply from the number that was texted. The opt-out confirmation and help replies go
 * to a suppressed person on purpose (the one message the rules expect); every other send checks
 * suppression first (the opt-in path does so before calling this).
 */
const reply = async (
  work: Work,
  message: {
    readonly settings: ComplianceSettings;
    readonly channel: Channel;
    readonly address: string;
    readonly sender: Sender;
    readonly match: KeywordMatch;
    readonly body: string;
    readonly action: "help-sent" | "confirmation-sent";
  },
): Promise<void> => {
  const { settings, channel, address, sender, match, body, action } = message;
  if (!shouldReply(channel, match, settings) || sender.proxy === undefined) return;
  const { proxy } = sender;
  const result = await twilioCall(work, () =>
    work.deps.twilio.sendText({
      from: twilioAddress(channel, proxy),
      to: twilioAddress(channel, address),
      body,
    }),
  );
  work.actions.push(result === "sent" ? action : "reply-blocked-by-twilio");
};

const recordOf = (
  deps: ComplianceDeps,
  settings: ComplianceSettings,
  subject: ConsentSubject,
  action: ConsentRecord["action"],
  signal: InboundSignal | OptedOutFailureSignal,
  match: KeywordMatch | undefined,
  scope: string,
  sender: Sender,
): ConsentRecord => ({
  subject,
  action,
  eventId: signal.eventId,
  eventAt: signal.eventAt,
  recordedAt: deps.now(),
  source: signal.source,
  keyword: match?.keyword,
  decidedBy: match?.decidedBy ?? (signal.kind === "opted-out-failure" ? "error-21610" : undefined),
  scope,
  sender,
  messageSid: signal.messageSid,
  conversationSid: signal.conversationSid,
  expiresAt:
    settings.recordRetentionDays === undefined
      ? undefined
      : Math.floor(signal.eventAt / 1000) + settings.recordRetentionDays * 86_400,
});

// ---- Batch -------------------------------------------------------------------------------------------

export type RecordReport = RecordOutcome & {
  readonly receiveCount: number;
  readonly report?: ConsentReport;
};

/**
 * What kind of failure a record met, for its log line: `poison` (a malformed record that can never
 * succeed), Twilio's failure class (`configuration` means our credentials are wrong), or the error name.
 */
export const complianceFailureClass = (error: unknown): string => {
  if (isPoison(error) || error instanceof InvalidConsentEventError) return "poison";
  if (error instanceof TwilioApiError) return classifyTwilioFailure(error);
  return error instanceof Error ? error.name : "unknown";
};

export type ConsentBatchResult = {
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly records: readonly RecordReport[];
};

/**
 * One Lambda invocation's batch: FIFO per message group (a failure holds back the rest of its group),
 * failed records reported alone in `batchItemFailures` so SQS redelivers them and, after
 * `maxReceiveCount`, moves them to the DLQ.
 */
export const processConsentBatch = async (
  deps: ComplianceDeps,
  records: readonly QueueRecord[],
  remainingMs: () => number,
): Promise<ConsentBatchResult> => {
  const reports = new Map<string, ConsentReport>();
  const result = await processFifoBatch(records, async (envelope, context) => {
    reports.set(
      context.messageId,
      await handleConsentEnvelope(deps, envelope, { receiveCount: context.receiveCount, remainingMs }),
    );
  });
  const receiveCounts = new Map(
    records.map((record) => [
      record.messageId,
      Number(record.attributes.ApproximateReceiveCount ?? "1") || 1,
    ]),
  );
  return {
    batchItemFailures: result.batchItemFailures,
    records: result.outcomes.map((outcome) => {
      const report = reports.get(outcome.messageId);
      return {
        ...outcome,
        receiveCount: receiveCounts.get(outcome.messageId) ?? 1,
        ...(report === undefined ? {} : { report }),
      };
    }),
  };
};
