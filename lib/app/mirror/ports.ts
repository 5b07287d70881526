// Ports of the mirror use case, shaped by what it needs rather than by Twilio or DynamoDB: a thread
// directory (address → thread), a ledger of mirrored Messaging SIDs, the conversation registry and the
// handful of Twilio operations in `MirrorTwilio`; `sendOutbound` also asks the consent store whether the
// recipient opted out. Plus the deps bundles and the results the use cases return.
import type { TenantMirrorSettings, ThreadTimers } from "../../config/mirror-config.ts";
import type { Channel, Sender } from "../../domain/consent.ts";
import type { CustomerKey, OutboundStatus, ThreadMessage } from "../../domain/mirror.ts";
import type { TenantDirectory } from "../../domain/tenants.ts";
import type { RetryPolicy } from "../retry.ts";

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
   * `acme-support`); the tenant's `businessAuthor` when absent. Not used for Messaging-API sends.
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

export type OutboundSendResult =
  /** Posted into the customer's thread; Conversations delivers it to them once. */
  | { readonly via: "conversation"; readonly conversationSid: string; readonly messageSid: string }
  /** Sent through Programmable Messaging; the mirror puts it into the thread from its status callbacks. */
  | { readonly via: "messaging"; readonly sid: string; readonly status: string };

/** The compliance suppression store, as a send path asks it. */
export interface RecipientConsent {
  /**
   * True when the person opted out of messages from `sender` (or from all the tenant's senders on the
   * channel) and has not opted back in since. `sender` holds what the send names: its number, its
   * Messaging Service, or both; a part left unknown is assumed to be one the person opted out of.
   * Rejects when the store cannot answer.
   */
  isSuppressed(input: {
    readonly tenantId: string;
    readonly channel: Channel;
    /** E.164 without the channel prefix. */
    readonly address: string;
    readonly sender: Sender;
  }): Promise<boolean>;
}

export type OutboundSendDeps = Pick<
  MirrorDeps,
  "twilio" | "threads" | "ledger" | "registry" | "tenants" | "settingsFor" | "now" | "retry"
> & {
  /** Asked before anything else: the project never sends to someone who opted out. */
  readonly consent: RecipientConsent;
};
