// The mirror use case: keeps one Conversations thread per (tenant, channel, customer address) holding
// everything that arrives or leaves through Programmable Messaging, and keeps the conversation registry
// current from every Conversations event. Input is one queue envelope at a time; FIFO message groups
// (`addr:<customer>` for Messaging, `conv:<CH>` for Conversations) mean one customer's records arrive
// here one after another, but every step is still safe under concurrency and redelivery.
//
// It also holds `sendOutbound`, the project's send path. A customer bound in a thread receives every
// message posted there, so nothing here may post a copy of something they already received (see
// README.md "Mirroring", "Never twice").
//
// Ports are shaped by what this module needs: a thread directory (address → thread), a ledger of
// mirrored Messaging SIDs, the registry, and the handful of Twilio operations below.

import { randomUUID } from "node:crypto";
import type { TenantMirrorSettings, ThreadTimers } from "../config/mirror-config.ts";
import { firstValue } from "../domain/form-body.ts";
import {
  type CustomerKey,
  conversationAttributes,
  conversationSendAttributes,
  conversationSendOf,
  customerKey,
  InvalidMirrorInputError,
  inboundAttributes,
  inboundBody,
  isOutboundStatus,
  isOwnMessage,
  type MirrorChannel,
  mergeOutboundSummary,
  mirroredCopyOf,
  nativeCandidates,
  type OutboundStatus,
  outboundAttributes,
  outboundBody,
  parseAttributes,
  parseInboundMessage,
  parseStatusCallback,
  parseThreadUniqueName,
  supersedes,
  type ThreadMessage,
  threadUniqueName,
} from "../domain/mirror.ts";
import type { Envelope } from "../domain/queue-envelope.ts";
import { isValidTenantId, type TenantDirectory, tenantFor } from "../domain/tenants.ts";
import { classifyTwilioFailure, hasTwilioCode, TwilioErrorCode } from "../domain/twilio-errors.ts";
import { backoffDelay, type RetryPolicy, realSleep, withRetry } from "./retry.ts";

// ---- Ports ------------------------------------------------------------------------------------------

export type ThreadState = "initializing" | "active" | "inactive" | "closed";

export type ThreadInfo = {
  readonly conversationSid: string;
  readonly uniqueName: string | undefined;
  readonly state: ThreadState;
};

/** A conversation in which an address is bound, as ParticipantConversations reports it. */
export type HeldBinding = ThreadInfo & { readonly proxyAddress: string | undefined };

export type CreateThreadResult =
  | { readonly kind: "created"; readonly conversationSid: string }
  /** 50353: a conversation already has this unique name (a concurrent worker, or a lost mapping). */
  | { readonly kind: "name-taken" };

export type BindResult =
  | { readonly kind: "bound" }
  /** 50433/50437: this customer is already in this conversation; the binding we wanted exists. */
  | { readonly kind: "already-bound" }
  /** 50416: the address/proxy pair is bound in another active conversation (named if Twilio says). */
  | { readonly kind: "bound-elsewhere"; readonly holderSid: string | undefined }
  | { readonly kind: "thread-closed" };

export type PostResult =
  | { readonly kind: "posted"; readonly messageSid: string }
  /** 50377: closed conversations are final. */
  | { readonly kind: "thread-closed" }
  /** 20404: the conversation was deleted. */
  | { readonly kind: "thread-gone" };

export type SentMessage = {
  readonly sid: string;
  readonly from: string | undefined;
  readonly to: string;
  readonly body: string | undefined;
  /** `outbound-api`, `outbound-reply`, `inbound`, … */
  readonly direction: string;
};

export type OutboundSend = {
  readonly to: string;
  /**
   * Author of the message when it is sent through the customer's thread (a business identity such as
   * `acme-support`); `system` when absent. Not used for Messaging-API sends.
   */
  readonly author?: string | undefined;
  readonly from?: string | undefined;
  readonly messagingServiceSid?: string | undefined;
  readonly body?: string | undefined;
  /** WhatsApp template (Content API) SID, HX…. */
  readonly contentSid?: string | undefined;
  readonly contentVariables?: string | undefined;
  readonly statusCallback?: string | undefined;
};

export type ThreadPost = {
  readonly author: string;
  /** Absent for a template: `contentSid` is the content then. */
  readonly body: string | undefined;
  readonly attributes: string;
  readonly contentSid?: string | undefined;
  readonly contentVariables?: string | undefined;
};

export type UpdateResult = "updated" | "thread-closed" | "gone";

/** What the mirror asks of Twilio. Implementations never send X-Twilio-Webhook-Enabled (loop guard). */
export interface MirrorTwilio {
  createThread(input: {
    readonly uniqueName: string;
    readonly attributes: string;
    readonly messagingServiceSid: string | undefined;
    readonly timers: ThreadTimers;
  }): Promise<CreateThreadResult>;
  /** By SID or unique name; undefined when it does not exist. */
  fetchThread(sidOrUniqueName: string): Promise<ThreadInfo | undefined>;
  deleteThread(conversationSid: string): Promise<void>;
  addCustomer(
    conversationSid: string,
    binding: { readonly address: string; readonly proxyAddress: string },
  ): Promise<BindResult>;
  /** Conversations in which `address` is a participant (any proxy, any state). */
  bindingsOf(address: string): Promise<HeldBinding[]>;
  postMessage(conversationSid: string, message: ThreadPost): Promise<PostResult>;
  /**
   * The customer's SMS/WhatsApp participant in this conversation, if there is one: Twilio delivers every
   * message posted there to it. Undefined when the address is not a participant or the thread is gone.
   */
  participantBinding(
    conversationSid: string,
    address: string,
  ): Promise<{ readonly proxyAddress: string | undefined } | undefined>;
  /** The conversation's attributes as JSON text; undefined when it does not exist. */
  threadAttributes(conversationSid: string): Promise<string | undefined>;
  /** Conversation attributes are delivered to no participant, unlike a message. */
  updateThreadAttributes(conversationSid: string, attributes: string): Promise<UpdateResult>;
  /** Newest first; undefined when the conversation does not exist. */
  recentMessages(conversationSid: string, limit: number): Promise<ThreadMessage[] | undefined>;
  updateMessageAttributes(
    conversationSid: string,
    messageSid: string,
    attributes: string,
  ): Promise<UpdateResult>;
  /** A Programmable Messaging message; undefined when Twilio does not know it. */
  fetchSentMessage(messageSid: string): Promise<SentMessage | undefined>;
  sendMessage(send: OutboundSend): Promise<{ readonly sid: string; readonly status: string }>;
}

export type ThreadMapping = {
  readonly conversationSid: string;
  readonly uniqueName: string | undefined;
  /** Generation of the unique name (1, 2, …); 0 for an adopted conversation that is not ours. */
  readonly generation: number;
  /** `adopted`: a conversation someone else made (autocreation, Flex) that already binds the customer. */
  readonly origin: "created" | "adopted";
  /** The customer's address/proxy pair is bound here, so Twilio itself captures their messages. */
  readonly bound: boolean;
  /** When we made the binding (epoch ms); 0 = before anything we know of (adopted). */
  readonly boundAt: number;
  readonly proxyAddress: string | undefined;
};

export interface ThreadMappings {
  get(key: CustomerKey): Promise<ThreadMapping | undefined>;
  /**
   * Stores `next` if the key still maps to `expected` (undefined: no mapping yet). Returns what is
   * stored afterwards: ours, or the concurrent winner's.
   */
  put(key: CustomerKey, next: ThreadMapping, expected: string | undefined): Promise<ThreadMapping>;
  markBound(
    key: CustomerKey,
    conversationSid: string,
    binding: { readonly proxyAddress: string; readonly at: number },
  ): Promise<void>;
}

/**
 * - pending: we are about to post (or crashed while posting) into `conversationSid`;
 * - posted: our copy is `messageSid` (or, for an entry keyed by an IM SID, `sendOutbound`'s own post);
 * - captured: Twilio put the inbound message into the thread itself (a bound pair) as `messageSid`;
 * - native: a Conversations delivery (or its copy in a bound thread): never mirrored;
 * - summarized: an outbound message to a customer bound in `conversationSid`; a copy would be
 *   delivered to them again, so it is listed in the conversation's attributes instead.
 */
export type MirrorState = "pending" | "posted" | "captured" | "native" | "summarized";

export type LedgerEntry = {
  readonly messagingMessageSid: string;
  /** Undefined when only `recordSend` wrote the entry. */
  readonly state: MirrorState | undefined;
  readonly conversationSid: string | undefined;
  readonly messageSid: string | undefined;
  readonly template: string | undefined;
  /** Highest outbound status seen. */
  readonly status: OutboundStatus | undefined;
  readonly errorCode: string | undefined;
  /** The status the thread shows (on the message, or in the conversation's summary). */
  readonly appliedStatus: OutboundStatus | undefined;
  /** Set when `sendOutbound` posted the message for Conversations to deliver; the key is then its IM SID. */
  readonly sendId: string | undefined;
};

export interface MirrorLedger {
  get(messagingMessageSid: string): Promise<LedgerEntry | undefined>;
  /** Marks the intent to post; false if the message is already settled (posted, captured, native). */
  begin(
    messagingMessageSid: string,
    intent: { readonly conversationSid: string; readonly tenantId: string; readonly at: number },
  ): Promise<boolean>;
  complete(
    messagingMessageSid: string,
    posted: {
      readonly conversationSid: string;
      readonly messageSid: string;
      readonly at: number;
      /** Outbound only: the status the posted copy shows. */
      readonly status?: { readonly status: OutboundStatus; readonly errorCode: string | undefined };
    },
  ): Promise<void>;
  /**
   * Settles a message without a copy of ours: Twilio put it into a thread itself (captured, native), or
   * it was summarized on a thread the customer is bound in. False if the entry was already settled.
   */
  settle(
    messagingMessageSid: string,
    settled: {
      readonly state: "captured" | "native" | "summarized";
      readonly conversationSid: string | undefined;
      readonly messageSid: string | undefined;
      readonly at: number;
    },
  ): Promise<boolean>;
  /** One thread message can stand for one Messaging SID only; true if it is (now) ours. */
  claimMessage(messageSid: string, messagingMessageSid: string, at: number): Promise<boolean>;
  /** Raises the recorded status if `status` ranks higher; returns the entry afterwards. */
  advanceStatus(
    messagingMessageSid: string,
    update: { readonly status: OutboundStatus; readonly errorCode: string | undefined; readonly at: number },
  ): Promise<LedgerEntry | undefined>;
  markApplied(messagingMessageSid: string, status: OutboundStatus, at: number): Promise<void>;
  /** What only the sender knows (template SID, the `sendId` of a post), recorded by `sendOutbound`. */
  recordSend(
    messagingMessageSid: string,
    send: {
      readonly tenantId: string;
      readonly template: string | undefined;
      readonly sendId?: string | undefined;
      readonly at: number;
    },
  ): Promise<void>;
}

export type RegistryState = ThreadState | "deleted";

export interface RegistryWriter {
  touch(input: { conversationSid: string; tenantId: string; at: number }): Promise<void>;
  setState(input: {
    conversationSid: string;
    tenantId: string;
    state: RegistryState;
    at: number;
    outcome?: string | undefined;
  }): Promise<boolean>;
}

export type MirrorDeps = {
  readonly twilio: MirrorTwilio;
  readonly threads: ThreadMappings;
  readonly ledger: MirrorLedger;
  readonly registry: RegistryWriter;
  readonly tenants: TenantDirectory;
  readonly settingsFor: (tenantId: string) => TenantMirrorSettings;
  readonly now: () => number;
  /** Backoff plumbing for Twilio calls; tests pass an instant `sleep`. */
  readonly retry?: Pick<RetryPolicy, "sleep" | "random" | "remainingMs"> & { readonly attempts?: number };
};

export type MirrorOutcome =
  | "mirrored"
  | "outbound-mirrored"
  | "duplicate"
  /** Twilio already put the inbound message into the customer's bound thread (autocreation). */
  | "already-in-thread"
  | "status-applied"
  | "status-stale"
  | "status-unapplied"
  /**
   * An outbound Messaging-API message to a customer bound in the thread: not posted (Twilio would
   * deliver the copy to them), listed in the conversation's attributes instead.
   */
  | "outbound-not-posted"
  | "conversations-delivery"
  | "registry-updated"
  /** Loop guard: an onMessageAdded for a message we (or a REST caller as `system`) posted. */
  | "own-message"
  | "ignored";

/** Why an outbound message was not posted into its thread. */
export type NotPostedReason = "customer-bound";

export type MirrorResult = {
  readonly outcome: MirrorOutcome;
  readonly reason?: NotPostedReason;
  readonly tenantId?: string;
  readonly conversationSid?: string;
  /** The customer's address, for logs (the handler masks it). */
  readonly address?: string;
};

// ---- Errors -----------------------------------------------------------------------------------------

/** An inbound message that did not pass the compliance gate; mirroring it could mirror a suppressed sender. */
export class UngatedInboundError extends Error {
  override name = "UngatedInboundError";
}

/** No writable thread could be found or made for the customer right now; SQS retries the record. */
export class ThreadUnavailableError extends Error {
  override name = "ThreadUnavailableError";
}

/** 50416 named no conversation we could find; retried, since the holder may be closing. */
export class BindingConflictError extends Error {
  override name = "BindingConflictError";
}

/**
 * The message went out, but recording it failed. Do not send it again: the customer has it. Status
 * updates for it may be missing from the thread.
 */
export class SentNotRecordedError extends Error {
  override name = "SentNotRecordedError";
  readonly sent: OutboundSendResult;
  constructor(sent: OutboundSendResult, options: { readonly cause: unknown }) {
    super("the message was sent but could not be recorded; do not send it again", options);
    this.sent = sent;
  }
}

// ---- Tuning -----------------------------------------------------------------------------------------

/** How far apart a captured message and our webhook may be and still be the same message. */
export const CaptureWindowMs = 10 * 60_000;
/** Clock skew between the webhook function (receivedAt) and this one (boundAt). */
const CaptureSkewMs = 5_000;
/** Our copy of a message is among the newest of its thread: one customer's records are serialised. */
const RecentMessages = 50;
const MaxGenerationProbe = 20;
const MaxThreadReplacements = 3;

// ---- Retry helpers ----------------------------------------------------------------------------------

const policy = (tuning: MirrorDeps["retry"], isRetryable: (error: unknown) => boolean): RetryPolicy => ({
  attempts: tuning?.attempts ?? 4,
  baseDelayMs: 200,
  maxDelayMs: 2_000,
  isRetryable,
  ...(tuning?.sleep === undefined ? {} : { sleep: tuning.sleep }),
  ...(tuning?.random === undefined ? {} : { random: tuning.random }),
  ...(tuning?.remainingMs === undefined ? {} : { remainingMs: tuning.remainingMs }),
});

const isRetryableFailure = (error: unknown): boolean => classifyTwilioFailure(error) === "retryable";

/** 20429 is "never processed": the one failure after which even a create may be repeated blindly. */
const isUnprocessed = (error: unknown): boolean =>
  hasTwilioCode(error, TwilioErrorCode.tooManyRequests) ||
  (typeof error === "object" && error !== null && "status" in error && error.status === 429);

/** Reads, and writes made idempotent by a unique name or a binding check (50353, 50437). */
const idempotent = <T>(deps: Pick<MirrorDeps, "retry">, operation: () => Promise<T>): Promise<T> =>
  withRetry(operation, policy(deps.retry, isRetryableFailure));

// ---- Threads ----------------------------------------------------------------------------------------

type Customer = {
  readonly key: CustomerKey;
  /** Our number (or WhatsApp sender) the customer talks to: the participant's proxy address. */
  readonly proxyAddress: string | undefined;
  readonly messagingServiceSid: string | undefined;
  readonly settings: TenantMirrorSettings;
  /** Event time (epoch ms) of the record being processed. */
  readonly at: number;
  /**
   * Bind only after posting: Twilio delivers whatever is posted to a bound customer, so a system copy
   * of an outbound message must land before the binding exists (see `bindAfterPost`).
   */
  readonly bindAfterPost: boolean;
};

const customerOf = (
  deps: MirrorDeps,
  tenantId: string,
  address: string,
  proxyAddress: string | undefined,
  messagingServiceSid: string | undefined,
  at: number,
  bindAfterPost = false,
): Customer => {
  const settings = deps.settingsFor(tenantId);
  return {
    key: customerKey(tenantId, address),
    proxyAddress,
    messagingServiceSid: settings.messagingServiceSid ?? messagingServiceSid,
    settings,
    at,
    bindAfterPost,
  };
};

const sameCustomer = (a: CustomerKey, b: CustomerKey): boolean =>
  a.tenantId === b.tenantId && a.channel === b.channel && a.address === b.address;

/** The customer's thread, from the mapping (hot path: one DynamoDB read) or found/created (cold path). */
const resolveThread = async (
  deps: MirrorDeps,
  customer: Customer,
  stale?: string,
): Promise<ThreadMapping> => {
  const current = await deps.threads.get(customer.key);
  if (current !== undefined && current.conversationSid !== stale) {
    return customer.bindAfterPost ? current : ensureBound(deps, customer, current);
  }
  return openThread(deps, customer, current);
};

const ensureBound = async (deps: MirrorDeps, customer: Customer, mapping: ThreadMapping) => {
  const proxyAddress = customer.proxyAddress;
  if (mapping.bound || !customer.settings.bindCustomer || proxyAddress === undefined) return mapping;
  const result = await idempotent(deps, () =>
    deps.twilio.addCustomer(mapping.conversationSid, { address: customer.key.address, proxyAddress }),
  );
  switch (result.kind) {
    case "bound":
    case "already-bound": {
      const at = deps.now();
      await deps.threads.markBound(customer.key, mapping.conversationSid, { proxyAddress, at });
      return { ...mapping, bound: true, boundAt: at, proxyAddress };
    }
    case "thread-closed":
      return openThread(deps, customer, mapping);
    case "bound-elsewhere":
      return adoptHolder(deps, customer, mapping, result.holderSid);
  }
};

/** An active conversation that already binds this customer to this proxy (autocreation, Flex, lost mapping). */
const findHolder = async (deps: MirrorDeps, customer: Customer, exclude: string | undefined) => {
  const held = await idempotent(deps, () => deps.twilio.bindingsOf(customer.key.address));
  return held.find(
    (binding) =>
      binding.proxyAddress === customer.proxyAddress &&
      binding.state !== "closed" &&
      binding.conversationSid !== exclude,
  );
};

const adopt = async (
  deps: MirrorDeps,
  customer: Customer,
  current: ThreadMapping | undefined,
  holder: ThreadInfo,
): Promise<ThreadMapping> => {
  const parsed = holder.uniqueName === undefined ? undefined : parseThreadUniqueName(holder.uniqueName);
  const ours = parsed !== undefined && sameCustomer(parsed.key, customer.key);
  await deps.registry.touch({
    conversationSid: holder.conversationSid,
    tenantId: customer.key.tenantId,
    at: customer.at,
  });
  return deps.threads.put(
    customer.key,
    {
      conversationSid: holder.conversationSid,
      uniqueName: holder.uniqueName,
      generation: ours ? parsed.generation : (current?.generation ?? 0),
      origin: ours ? "created" : "adopted",
      bound: true,
      // When the holder bound the pair is unknown: treat every message as possibly captured.
      boundAt: 0,
      proxyAddress: customer.proxyAddress,
    },
    current?.conversationSid,
  );
};

const adoptHolder = async (
  deps: MirrorDeps,
  customer: Customer,
  current: ThreadMapping | undefined,
  holderSid: string | undefined,
): Promise<ThreadMapping> => {
  // The SID in 50416's message is a convenience; ParticipantConversations is the source of truth.
  const named =
    holderSid === undefined ? undefined : await idempotent(deps, () => deps.twilio.fetchThread(holderSid));
  const holder =
    named !== undefined && named.state !== "closed"
      ? named
      : await findHolder(deps, customer, current?.conversationSid);
  if (holder === undefined) {
    throw new BindingConflictError("the customer's binding is held by a conversation that cannot be found");
  }
  return adopt(deps, customer, current, holder);
};

const deleteQuietly = async (deps: MirrorDeps, conversationSid: string): Promise<void> => {
  // Best effort: an empty thread we just made and lost to an existing binding. If this fails, the
  // orphan is an empty conversation that the registry never saw; nothing routes to it.
  await deps.twilio.deleteThread(conversationSid).catch(() => undefined);
};

/**
 * Cold path: adopt a conversation that already binds the customer, else create (or join a concurrent
 * creator's) thread under the first unique-name generation that is not closed, bind the customer, and
 * store the mapping with a conditional write.
 */
const openThread = async (
  deps: MirrorDeps,
  customer: Customer,
  current: ThreadMapping | undefined,
): Promise<ThreadMapping> => {
  const proxyAddress = customer.proxyAddress;
  if (proxyAddress !== undefined) {
    const holder = await findHolder(deps, customer, current?.conversationSid);
    if (holder !== undefined) return adopt(deps, customer, current, holder);
  }
  const start = (current?.generation ?? 0) + 1;
  for (let generation = start; generation < start + MaxGenerationProbe; generation += 1) {
    const uniqueName = threadUniqueName(customer.key, generation);
    const created = await idempotent(deps, () =>
      deps.twilio.createThread({
        uniqueName,
        attributes: conversationAttributes(customer.key, generation),
        messagingServiceSid: customer.messagingServiceSid,
        timers: customer.settings.timers,
      }),
    );
    let conversationSid: string;
    if (created.kind === "created") {
      conversationSid = created.conversationSid;
    } else {
      const existing = await idempotent(deps, () => deps.twilio.fetchThread(uniqueName));
      if (existing === undefined || existing.state === "closed") continue;
      conversationSid = existing.conversationSid;
    }
    let boundAt = 0;
    if (customer.settings.bindCustomer && proxyAddress !== undefined && !customer.bindAfterPost) {
      const bind = await idempotent(deps, () =>
        deps.twilio.addCustomer(conversationSid, { address: customer.key.address, proxyAddress }),
      );
      if (bind.kind === "thread-closed") continue;
      if (bind.kind === "bound-elsewhere") {
        if (created.kind === "created") await deleteQuietly(deps, conversationSid);
        return adoptHolder(deps, customer, current, bind.holderSid);
      }
      boundAt = deps.now();
    }
    await deps.registry.touch({ conversationSid, tenantId: customer.key.tenantId, at: customer.at });
    return deps.threads.put(
      customer.key,
      {
        conversationSid,
        uniqueName,
        generation,
        origin: "created",
        bound: boundAt > 0,
        boundAt,
        proxyAddress,
      },
      current?.conversationSid,
    );
  }
  throw new ThreadUnavailableError(`no open thread within ${MaxGenerationProbe} unique-name generations`);
};

/**
 * Binds the customer into the thread that just took a post. A closed thread is left alone (the post
 * landed, so it closed just now; the next message replaces it); a conflict repoints the mapping.
 */
const bindAfterPost = async (deps: MirrorDeps, customer: Customer, thread: ThreadMapping): Promise<void> => {
  const proxyAddress = customer.proxyAddress;
  if (thread.bound || !customer.settings.bindCustomer || proxyAddress === undefined) return;
  const result = await idempotent(deps, () =>
    deps.twilio.addCustomer(thread.conversationSid, { address: customer.key.address, proxyAddress }),
  );
  if (result.kind === "bound" || result.kind === "already-bound") {
    await deps.threads.markBound(customer.key, thread.conversationSid, { proxyAddress, at: deps.now() });
  } else if (result.kind === "bound-elsewhere") {
    await adoptHolder(deps, customer, thread, result.holderSid);
  }
};

/** A thread we could not write to: record what we learnt, so the closer stops considering it. */
const noteUnwritable = async (
  deps: Pick<MirrorDeps, "registry" | "now">,
  conversationSid: string,
  kind: "thread-closed" | "thread-gone",
  tenantId: string,
) => {
  await deps.registry.setState({
    conversationSid,
    tenantId,
    state: kind === "thread-closed" ? "closed" : "deleted",
    at: deps.now(),
    outcome: "observed-by-mirror",
  });
};

// ---- Posting ----------------------------------------------------------------------------------------

const findMirroredCopy = async (
  deps: Pick<MirrorDeps, "twilio" | "retry">,
  conversationSid: string,
  messagingMessageSid: string,
) => {
  const recent = await idempotent(deps, () => deps.twilio.recentMessages(conversationSid, RecentMessages));
  return recent === undefined ? undefined : mirroredCopyOf(recent, messagingMessageSid);
};

/** Our copy of this Messaging message among a thread's newest messages. */
const mirroredCopy =
  (messagingMessageSid: string) =>
  (recent: readonly ThreadMessage[]): ThreadMessage | undefined =>
    mirroredCopyOf(recent, messagingMessageSid);

/**
 * Posts once. A create is not idempotent, so after an ambiguous failure (5xx, timeout: the post may
 * have landed) we look for the message (`findPosted`: by `messagingMessageSid`, or by `sendId`) before
 * posting again; only 20429 is repeated without looking.
 */
const postOnce = async (
  deps: Pick<MirrorDeps, "twilio" | "retry">,
  conversationSid: string,
  message: ThreadPost,
  findPosted: (recent: readonly ThreadMessage[]) => ThreadMessage | undefined,
): Promise<PostResult> => {
  const retry = policy(deps.retry, isRetryableFailure);
  const sleep = retry.sleep ?? realSleep;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await deps.twilio.postMessage(conversationSid, message);
    } catch (error) {
      if (!isRetryableFailure(error) || attempt + 1 >= retry.attempts) throw error;
      if (!isUnprocessed(error)) {
        const recent = await idempotent(deps, () =>
          deps.twilio.recentMessages(conversationSid, RecentMessages),
        );
        const copy = recent === undefined ? undefined : findPosted(recent);
        if (copy !== undefined) return { kind: "posted", messageSid: copy.messageSid };
      }
      const delay = backoffDelay(attempt, retry);
      if (retry.remainingMs !== undefined && retry.remainingMs() < delay + 1000) throw error;
      await sleep(delay);
    }
  }
};

/** Whether Twilio may have put this message into the thread itself (the pair was bound when it came). */
const mayBeCaptured = (thread: ThreadMapping, receivedAt: number): boolean =>
  thread.bound && receivedAt >= thread.boundAt - CaptureSkewMs;

const claimNative = async (
  deps: MirrorDeps,
  recent: readonly ThreadMessage[],
  probe: Parameters<typeof nativeCandidates>[1],
  messagingMessageSid: string,
): Promise<ThreadMessage | undefined> => {
  for (const candidate of nativeCandidates(recent, probe)) {
    if (await deps.ledger.claimMessage(candidate.messageSid, messagingMessageSid, deps.now()))
      return candidate;
  }
  return undefined;
};

const isSettled = (entry: LedgerEntry | undefined): boolean =>
  entry?.state === "posted" ||
  entry?.state === "captured" ||
  entry?.state === "native" ||
  entry?.state === "summarized";

// ---- Inbound ----------------------------------------------------------------------------------------

const mirrorInbound = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  if (envelope.forwardedBy !== "compliance") {
    throw new UngatedInboundError("inbound message reached the mirror without passing the compliance gate");
  }
  const message = parseInboundMessage(envelope.params);
  const sid = message.messagingMessageSid;
  const tenantId = tenantFor(deps.tenants, {
    to: message.to,
    messagingServiceSid: message.messagingServiceSid,
  });
  const customer = customerOf(
    deps,
    tenantId,
    message.from,
    message.to,
    message.messagingServiceSid,
    envelope.receivedAt,
  );
  const result = (outcome: MirrorOutcome, conversationSid?: string): MirrorResult => ({
    outcome,
    tenantId,
    address: message.from,
    ...(conversationSid === undefined ? {} : { conversationSid }),
  });

  let entry = await deps.ledger.get(sid);
  if (isSettled(entry)) return result("duplicate", entry?.conversationSid);
  let thread = await resolveThread(deps, customer);
  for (let replacements = 0; replacements <= MaxThreadReplacements; replacements += 1) {
    const conversationSid = thread.conversationSid;
    const touch = () => deps.registry.touch({ conversationSid, tenantId, at: envelope.receivedAt });
    if (entry?.state === "pending") {
      // An earlier attempt got as far as posting: did the post land before it died?
      const copy = await findMirroredCopy(deps, entry.conversationSid ?? conversationSid, sid);
      if (copy !== undefined) {
        await deps.ledger.complete(sid, {
          conversationSid: entry.conversationSid ?? conversationSid,
          messageSid: copy.messageSid,
          at: deps.now(),
        });
        return result("duplicate", entry.conversationSid ?? conversationSid);
      }
    }
    if (mayBeCaptured(thread, envelope.receivedAt)) {
      const recent = await idempotent(deps, () =>
        deps.twilio.recentMessages(conversationSid, RecentMessages),
      );
      const captured =
        recent === undefined
          ? undefined
          : await claimNative(
              deps,
              recent,
              {
                author: (author) => author === message.from,
                body: message.body,
                mediaCount: message.media.length,
                around: envelope.receivedAt,
                windowMs: CaptureWindowMs,
              },
              sid,
            );
      if (captured !== undefined) {
        await deps.ledger.settle(sid, {
          state: "captured",
          conversationSid,
          messageSid: captured.messageSid,
          at: deps.now(),
        });
        await touch();
        return result("already-in-thread", conversationSid);
      }
    }
    if (!(await deps.ledger.begin(sid, { conversationSid, tenantId, at: deps.now() }))) {
      return result("duplicate", conversationSid);
    }
    const posted = await postOnce(
      deps,
      conversationSid,
      {
        author: message.from,
        body: inboundBody(message),
        attributes: inboundAttributes({
          message,
          channel: customer.key.channel,
          receivedAt: envelope.receivedAt,
        }),
      },
      mirroredCopy(sid),
    );
    if (posted.kind === "posted") {
      await deps.ledger.complete(sid, { conversationSid, messageSid: posted.messageSid, at: deps.now() });
      await touch();
      return result("mirrored", conversationSid);
    }
    // Closed or deleted under us: nothing was posted there. Replace the thread and post again.
    await noteUnwritable(deps, conversationSid, posted.kind, tenantId);
    thread = await resolveThread(deps, customer, conversationSid);
    entry = undefined;
  }
  throw new ThreadUnavailableError("the customer's thread kept closing while mirroring");
};

// ---- Outbound ---------------------------------------------------------------------------------------

type StatusUpdate = {
  readonly sid: string;
  readonly status: OutboundStatus;
  readonly errorCode: string | undefined;
};

/** A ledger entry with a recorded status that points at a thread message. */
type AppliedEntry = LedgerEntry & {
  readonly status: OutboundStatus;
  readonly conversationSid: string;
  readonly messageSid: string;
};

type ResultBase = Omit<MirrorResult, "outcome">;

/**
 * Records `update` in the ledger (monotonic) and brings the thread message's attributes up to the
 * highest status recorded. `render` writes the whole attributes from the ledger entry, because a
 * mirrored copy and `sendOutbound`'s own post carry different ones.
 */
const applyStatus = async (
  deps: MirrorDeps,
  update: StatusUpdate,
  render: (entry: AppliedEntry) => string,
  base: ResultBase,
): Promise<MirrorResult> => {
  const entry = await deps.ledger.advanceStatus(update.sid, {
    status: update.status,
    errorCode: update.errorCode,
    at: deps.now(),
  });
  if (entry?.status === undefined || entry.conversationSid === undefined || entry.messageSid === undefined) {
    return { outcome: "status-stale", ...base };
  }
  const applied: AppliedEntry = {
    ...entry,
    status: entry.status,
    conversationSid: entry.conversationSid,
    messageSid: entry.messageSid,
  };
  // Compare with what the thread shows, not with this callback: a retry after a failed update must
  // still apply the highest status recorded.
  if (applied.appliedStatus !== undefined && !supersedes(applied.status, applied.appliedStatus)) {
    return { outcome: "status-stale", ...base, conversationSid: applied.conversationSid };
  }
  const updated = await idempotent(deps, () =>
    deps.twilio.updateMessageAttributes(applied.conversationSid, applied.messageSid, render(applied)),
  );
  // A closed thread is final: record the status as applied so retries stop; the ledger keeps it.
  await deps.ledger.markApplied(update.sid, applied.status, deps.now());
  return {
    outcome: updated === "updated" ? "status-applied" : "status-unapplied",
    ...base,
    conversationSid: applied.conversationSid,
  };
};

const mirroredCopyAttributes =
  (messagingMessageSid: string, channel: MirrorChannel) =>
  (entry: AppliedEntry): string =>
    outboundAttributes({
      messagingMessageSid,
      channel,
      template: entry.template,
      status: entry.status,
      errorCode: entry.errorCode,
    });

/**
 * `applyStatus` for a message that was summarized instead of posted: the highest status recorded goes
 * into the conversation's `outboundNotMirrored` list. Unreadable or full attributes are left alone
 * (`status-unapplied`); the ledger still has the status.
 */
const applySummary = async (
  deps: MirrorDeps,
  update: StatusUpdate,
  at: number,
  base: ResultBase,
): Promise<MirrorResult> => {
  const entry = await deps.ledger.advanceStatus(update.sid, {
    status: update.status,
    errorCode: update.errorCode,
    at: deps.now(),
  });
  if (entry?.status === undefined || entry.conversationSid === undefined) {
    return { outcome: "status-stale", ...base };
  }
  const { conversationSid, status } = entry;
  if (entry.appliedStatus !== undefined && !supersedes(status, entry.appliedStatus)) {
    return { outcome: "status-stale", ...base, conversationSid };
  }
  const current = await idempotent(deps, () => deps.twilio.threadAttributes(conversationSid));
  let applied: UpdateResult | "unmergeable" = "gone";
  if (current !== undefined) {
    const merged = mergeOutboundSummary(current, {
      messagingMessageSid: update.sid,
      status,
      errorCode: entry.errorCode,
      template: entry.template,
      at,
    });
    // Read-modify-write: one customer's callbacks are serialised by their FIFO group, so only a writer
    // outside the mirror (an agent's tool editing the attributes) can race this; Twilio has no ETag here.
    applied =
      merged.kind === "merged"
        ? await idempotent(deps, () => deps.twilio.updateThreadAttributes(conversationSid, merged.attributes))
        : merged.kind === "unchanged"
          ? "updated"
          : "unmergeable";
  }
  await deps.ledger.markApplied(update.sid, status, deps.now());
  return { outcome: applied === "updated" ? "status-applied" : "status-unapplied", ...base, conversationSid };
};

/**
 * Whether Twilio delivers what is posted in this thread to the customer. A mapping that says bound is
 * trusted: if it is stale, withholding a copy costs the thread a message body, never the customer a
 * second message. A mapping that says unbound is checked, because a binding made by someone else (an
 * agent, a crash between binding and recording it) would turn a copy into a second delivery; what the
 * check finds is written back to the mapping.
 */
const withBindingChecked = async (
  deps: MirrorDeps,
  customer: Customer,
  thread: ThreadMapping,
): Promise<ThreadMapping> => {
  if (thread.bound) return thread;
  const binding = await idempotent(deps, () =>
    deps.twilio.participantBinding(thread.conversationSid, customer.key.address),
  );
  if (binding === undefined) return thread;
  const proxyAddress = binding.proxyAddress ?? thread.proxyAddress;
  // When the binding was made is unknown: 0 makes every later inbound message a possible capture.
  if (proxyAddress !== undefined) {
    await deps.threads.markBound(customer.key, thread.conversationSid, { proxyAddress, at: 0 });
  }
  return { ...thread, bound: true, boundAt: 0, proxyAddress };
};

const mirrorStatus = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  const callback = parseStatusCallback(envelope.params);
  const status = callback.status;
  if (!isOutboundStatus(status)) return { outcome: "ignored" };
  const sid = callback.messagingMessageSid;
  const tenantId = tenantFor(deps.tenants, {
    to: callback.from,
    messagingServiceSid: callback.messagingServiceSid,
  });
  const key = customerKey(tenantId, callback.to);
  const update = { sid, status, errorCode: callback.errorCode };
  const base = { tenantId, address: key.address };
  const asCopy = mirroredCopyAttributes(sid, key.channel);

  const entry = await deps.ledger.get(sid);
  if (entry?.state === "native" || entry?.state === "captured") {
    return { outcome: "conversations-delivery", ...base };
  }
  if (entry?.state === "posted") return applyStatus(deps, update, asCopy, base);
  if (entry?.state === "summarized") return applySummary(deps, update, envelope.receivedAt, base);

  // First callback we act on for this message: put a system message into the customer's thread, or,
  // if the customer is bound there, list the message on the conversation.
  const sent = await idempotent(deps, () => deps.twilio.fetchSentMessage(sid));
  if (sent?.direction.startsWith("inbound")) return { outcome: "ignored", ...base };
  const customer = customerOf(
    deps,
    tenantId,
    callback.to,
    callback.from ?? sent?.from,
    callback.messagingServiceSid,
    envelope.receivedAt,
    true,
  );
  let thread = await resolveThread(deps, customer);
  for (let replacements = 0; replacements <= MaxThreadReplacements; replacements += 1) {
    const conversationSid = thread.conversationSid;
    const recent = await idempotent(deps, () => deps.twilio.recentMessages(conversationSid, RecentMessages));
    if (recent !== undefined) {
      // Our copy may exist although the ledger does not say so: a crash after posting, or an expired entry.
      const otherThread =
        entry?.conversationSid !== undefined && entry.conversationSid !== conversationSid
          ? entry.conversationSid
          : undefined;
      const here = mirroredCopyOf(recent, sid);
      const copy =
        here ?? (otherThread === undefined ? undefined : await findMirroredCopy(deps, otherThread, sid));
      if (copy !== undefined) {
        await deps.ledger.complete(sid, {
          conversationSid: here !== undefined ? conversationSid : (otherThread ?? conversationSid),
          messageSid: copy.messageSid,
          at: deps.now(),
        });
        return applyStatus(deps, update, asCopy, base);
      }
      thread = await withBindingChecked(deps, customer, thread);
      if (thread.bound) {
        // This SMS may be Conversations delivering a message of the thread (an agent's, or one
        // `sendOutbound` posted) to the customer.
        if (sent?.body !== undefined && sent.body !== "") {
          const native = await claimNative(
            deps,
            recent,
            {
              author: (author) => author !== key.address,
              body: sent.body,
              mediaCount: 0,
              around: envelope.receivedAt,
              windowMs: CaptureWindowMs,
              conversationSends: true,
            },
            sid,
          );
          if (native !== undefined) {
            await deps.ledger.settle(sid, {
              state: "native",
              conversationSid,
              messageSid: native.messageSid,
              at: deps.now(),
            });
            return { outcome: "conversations-delivery", ...base, conversationSid };
          }
        }
        // Closing released the binding: then the post below finds the thread closed and the copy goes
        // into its replacement, as for any unbound thread.
        const open = await idempotent(deps, () => deps.twilio.fetchThread(conversationSid));
        if (open !== undefined && open.state !== "closed") {
          // The customer already has this message from the Messaging API, and Twilio delivers every post
          // in this thread to them: a copy would reach them twice. Conversation attributes reach no one.
          await deps.registry.touch({ conversationSid, tenantId, at: envelope.receivedAt });
          const settled = await deps.ledger.settle(sid, {
            state: "summarized",
            conversationSid,
            messageSid: undefined,
            at: deps.now(),
          });
          if (!settled) return { outcome: "duplicate", ...base, conversationSid };
          await applySummary(deps, update, envelope.receivedAt, base);
          return { outcome: "outbound-not-posted", reason: "customer-bound", ...base, conversationSid };
        }
      }
      if (!(await deps.ledger.begin(sid, { conversationSid, tenantId, at: deps.now() }))) {
        return { outcome: "duplicate", ...base, conversationSid };
      }
      const posted = await postOnce(
        deps,
        conversationSid,
        {
          author: "system",
          body: outboundBody(sent?.body, entry?.template),
          attributes: outboundAttributes({
            messagingMessageSid: sid,
            channel: key.channel,
            template: entry?.template,
            status,
            errorCode: callback.errorCode,
          }),
        },
        mirroredCopy(sid),
      );
      if (posted.kind === "posted") {
        await deps.ledger.complete(sid, {
          conversationSid,
          messageSid: posted.messageSid,
          at: deps.now(),
          status: { status, errorCode: callback.errorCode },
        });
        await bindAfterPost(deps, customer, thread);
        await deps.registry.touch({ conversationSid, tenantId, at: envelope.receivedAt });
        return { outcome: "outbound-mirrored", ...base, conversationSid };
      }
      await noteUnwritable(deps, conversationSid, posted.kind, tenantId);
    } else {
      await noteUnwritable(deps, conversationSid, "thread-gone", tenantId);
    }
    thread = await resolveThread(deps, customer, conversationSid);
  }
  throw new ThreadUnavailableError("the customer's thread kept closing while mirroring an outbound message");
};

// ---- Sending ----------------------------------------------------------------------------------------

export type OutboundSendResult =
  /** Posted into the customer's thread; Conversations delivers it to them once. */
  | { readonly via: "conversation"; readonly conversationSid: string; readonly messageSid: string }
  /** Sent through Programmable Messaging; the mirror puts it into the thread from its status callbacks. */
  | { readonly via: "messaging"; readonly sid: string; readonly status: string };

export type OutboundSendDeps = Pick<
  MirrorDeps,
  "twilio" | "threads" | "ledger" | "registry" | "tenants" | "now" | "retry"
>;

/**
 * The customer's thread if a post there reaches them: it is open and they are its participant, checked
 * with Twilio rather than taken from the mapping, because a post into a thread without them would reach
 * no one. A send that names another sender than the binding's proxy is left to the Messaging API:
 * Conversations would deliver from the proxy.
 */
const deliveringThread = async (
  deps: OutboundSendDeps,
  key: CustomerKey,
  from: string | undefined,
): Promise<string | undefined> => {
  const mapping = await deps.threads.get(key);
  if (mapping === undefined) return undefined;
  const conversationSid = mapping.conversationSid;
  const thread = await idempotent(deps, () => deps.twilio.fetchThread(conversationSid));
  // Closing releases the binding; an initializing conversation takes no messages yet.
  if (thread?.state !== "active" && thread?.state !== "inactive") return undefined;
  const binding = await idempotent(deps, () => deps.twilio.participantBinding(conversationSid, key.address));
  if (binding === undefined) return undefined;
  if (from !== undefined && binding.proxyAddress !== undefined && binding.proxyAddress !== from) {
    return undefined;
  }
  return conversationSid;
};

/** Bookkeeping after the message went out: a failure must not look like a failed send to the caller. */
const recordSent = async (
  sent: OutboundSendResult,
  record: () => Promise<void>,
): Promise<OutboundSendResult> => {
  try {
    await record();
  } catch (error) {
    throw new SentNotRecordedError(sent, { cause: error });
  }
  return sent;
};

/**
 * Sends a message to a customer so that they receive it exactly once and it appears in their thread.
 *
 * - The customer is bound in an open thread: the message is posted there (`ContentSid` and
 *   `ContentVariables` for a template) and Conversations delivers it. Sending it through the Messaging
 *   API instead would reach them twice once the mirror posted its copy. Its delivery statuses come
 *   back as onDeliveryUpdated events and update the message's attributes. An ambiguous failure (5xx,
 *   timeout) is checked for by the post's `sendId` before the post is repeated.
 * - Otherwise it goes through Programmable Messaging, and the template is recorded so the status
 *   callbacks mirror it with `attributes.template`. Only 20429 is retried: Twilio offers no way to look
 *   for a Messaging send after an ambiguous failure.
 *
 * Throws `SentNotRecordedError` (never resend) when the message went out but recording it failed.
 */
export const sendOutbound = async (
  deps: OutboundSendDeps,
  send: OutboundSend,
): Promise<OutboundSendResult> => {
  const tenantId = tenantFor(deps.tenants, { to: send.from, messagingServiceSid: send.messagingServiceSid });
  const conversationSid = await deliveringThread(deps, customerKey(tenantId, send.to), send.from);
  if (conversationSid !== undefined) {
    const sendId = randomUUID();
    const posted = await postOnce(
      deps,
      conversationSid,
      {
        author: send.author ?? "system",
        body: send.body,
        contentSid: send.contentSid,
        contentVariables: send.contentVariables,
        attributes: conversationSendAttributes({
          sendId,
          template: send.contentSid,
          status: undefined,
          errorCode: undefined,
        }),
      },
      (recent) => conversationSendOf(recent, sendId),
    );
    if (posted.kind === "posted") {
      const messageSid = posted.messageSid;
      return recordSent({ via: "conversation", conversationSid, messageSid }, async () => {
        const at = deps.now();
        // Keyed by the IM SID: onDeliveryUpdated names the message, and the entry finds its attributes.
        await deps.ledger.recordSend(messageSid, { tenantId, template: send.contentSid, sendId, at });
        await deps.ledger.complete(messageSid, { conversationSid, messageSid, at });
        await deps.registry.touch({ conversationSid, tenantId, at });
      });
    }
    // Closed or deleted since the check: the binding went with it, so a Messaging send arrives once.
    await noteUnwritable(deps, conversationSid, posted.kind, tenantId);
  }
  const sent = await withRetry(() => deps.twilio.sendMessage(send), policy(deps.retry, isUnprocessed));
  return recordSent({ via: "messaging", sid: sent.sid, status: sent.status }, () =>
    deps.ledger.recordSend(sent.sid, { tenantId, template: send.contentSid, at: deps.now() }),
  );
};

// ---- Conversations events → registry ----------------------------------------------------------------

const eventTime = (value: string | undefined, fallback: number): number => {
  const parsed = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isFinite(parsed) ? parsed : fallback;
};

const tenantOfEvent = (deps: MirrorDeps, envelope: Envelope): string => {
  const attributes = parseAttributes(firstValue(envelope.params, "Attributes"));
  const tenantId = attributes.tenantId;
  if (typeof tenantId === "string" && isValidTenantId(tenantId)) return tenantId;
  return tenantFor(deps.tenants, {
    to: firstValue(envelope.params, "MessagingBinding.ProxyAddress"),
    messagingServiceSid: firstValue(envelope.params, "MessagingServiceSid"),
  });
};

const registryStates: Readonly<Record<string, ThreadState>> = {
  active: "active",
  inactive: "inactive",
  closed: "closed",
};

/** Twilio's delivery receipts carry ErrorCode 0 when there was no error. */
const deliveryErrorCode = (value: string | undefined): string | undefined =>
  value === undefined || value === "" || value === "0" ? undefined : value;

/**
 * onDeliveryUpdated: Conversations delivered one of its messages as an SMS/WhatsApp message. That
 * message is never mirrored back; if it is one `sendOutbound` posted, its status goes onto it.
 */
const recordDelivery = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  const params = envelope.params;
  const conversationSid = firstValue(params, "ConversationSid") || undefined;
  const messageSid = firstValue(params, "MessageSid") || undefined;
  const channelMessageSid = firstValue(params, "ChannelMessageSid") || undefined;
  const base = conversationSid === undefined ? {} : { conversationSid };
  if (channelMessageSid !== undefined) {
    await deps.ledger.settle(channelMessageSid, {
      state: "native",
      conversationSid,
      messageSid,
      at: deps.now(),
    });
  }
  const status = firstValue(params, "Status");
  if (messageSid !== undefined && status !== undefined && isOutboundStatus(status)) {
    const ours = await deps.ledger.get(messageSid);
    const sendId = ours?.sendId;
    if (ours?.state === "posted" && sendId !== undefined) {
      return applyStatus(
        deps,
        { sid: messageSid, status, errorCode: deliveryErrorCode(firstValue(params, "ErrorCode")) },
        (entry) =>
          conversationSendAttributes({
            sendId,
            template: entry.template,
            status: entry.status,
            errorCode: entry.errorCode,
          }),
        base,
      );
    }
  }
  return { outcome: channelMessageSid === undefined ? "ignored" : "conversations-delivery", ...base };
};

const recordConversationEvent = async (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  const params = envelope.params;
  const eventType = envelope.kind.slice("conversations.".length);
  const conversationSid = firstValue(params, "ConversationSid");
  if (eventType === "onDeliveryUpdated") return recordDelivery(deps, envelope);
  if (conversationSid === undefined || conversationSid === "") return { outcome: "ignored" };
  const tenantId = tenantOfEvent(deps, envelope);
  const done = (outcome: MirrorOutcome): MirrorResult => ({ outcome, tenantId, conversationSid });
  switch (eventType) {
    case "onMessageAdded":
    case "onConversationAdded":
    case "onParticipantAdded": {
      const at = eventTime(firstValue(params, "DateCreated"), envelope.receivedAt);
      await deps.registry.touch({ conversationSid, tenantId, at });
      if (eventType !== "onMessageAdded") return done("registry-updated");
      const own = isOwnMessage(
        firstValue(params, "Author"),
        parseAttributes(firstValue(params, "Attributes")),
      );
      return done(own ? "own-message" : "registry-updated");
    }
    case "onConversationStateUpdated": {
      const state = registryStates[firstValue(params, "StateTo") ?? ""];
      if (state === undefined) return done("ignored");
      const reason = firstValue(params, "Reason")?.toLowerCase();
      await deps.registry.setState({
        conversationSid,
        tenantId,
        state,
        at: eventTime(firstValue(params, "StateUpdated"), envelope.receivedAt),
        outcome: state === "closed" && reason !== undefined ? reason : undefined,
      });
      return done("registry-updated");
    }
    case "onConversationRemoved": {
      await deps.registry.setState({
        conversationSid,
        tenantId,
        state: "deleted",
        at: eventTime(firstValue(params, "DateRemoved"), envelope.receivedAt),
        outcome: "removed",
      });
      return done("registry-updated");
    }
    default:
      return done("ignored");
  }
};

// ---- Entry point ------------------------------------------------------------------------------------

/** Handles one queue record. Throws when the record must be retried (and, in the end, dead-lettered). */
export const mirrorEvent = (deps: MirrorDeps, envelope: Envelope): Promise<MirrorResult> => {
  switch (envelope.kind) {
    case "messaging.inbound":
      return mirrorInbound(deps, envelope);
    case "messaging.status":
      return mirrorStatus(deps, envelope);
    default:
      return recordConversationEvent(deps, envelope);
  }
};

/** Errors that no retry can fix; the batch still reports them so they reach the DLQ with a reason. */
export const isPermanentMirrorFailure = (error: unknown): boolean =>
  error instanceof UngatedInboundError ||
  error instanceof InvalidMirrorInputError ||
  classifyTwilioFailure(error) !== "retryable";
