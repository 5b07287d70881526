// Ports the webhook use case depends on, shaped by what intake needs rather than by DynamoDB or SQS.
import type { FormParams } from "../domain/form-body.ts";
import type { PreEvent } from "../domain/webhook-events.ts";
import type { QueueName } from "../resources.ts";

/** The first claim of an event id, owned by this invocation until it is handed off or released. */
export type OwnedClaim = { readonly kind: "claimed"; readonly eventId: string; readonly token: string };
/** Someone claimed this event id before; `firstSeenAt` (epoch ms) tells how long ago. */
export type ExistingClaim = {
  readonly kind: "duplicate";
  readonly eventId: string;
  readonly firstSeenAt: number;
};
export type Claim = OwnedClaim | ExistingClaim;

export interface DedupeStore {
  /** Claims `eventId` unless a live (unexpired) claim exists. One conditional write. */
  claim(eventId: string, now: number): Promise<Claim>;
  /** Gives back a claim this invocation owns, so a redelivery is processed. */
  release(claim: OwnedClaim): Promise<void>;
}

export type QueueMessage = {
  readonly body: string;
  readonly groupKey: string;
  readonly deduplicationId: string;
};

export interface EventQueue {
  send(queue: QueueName, message: QueueMessage): Promise<void>;
}

export type PreEventDecision = { readonly allow: true } | { readonly allow: false; readonly reason: string };

/** Synchronous answer to a Conversations pre-action hook; Twilio waits at most 5 s for it. */
export interface PreEventPolicy {
  decide(event: PreEvent, params: FormParams): Promise<PreEventDecision>;
}

export const allowAllPreEvents: PreEventPolicy = { decide: async () => ({ allow: true }) };

/** Auth tokens that may have signed a request: primary, secondary (rotation) and the subaccount's own. */
export interface AuthTokenSource {
  tokensFor(accountSid: string | undefined): Promise<readonly string[]>;
  /** Re-reads the tokens if the cached copy may be stale; true if anything changed. */
  refresh(): Promise<boolean>;
}
