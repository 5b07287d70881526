// Errors the use cases in lib/app raise (domain errors stay in lib/domain). The webhook's are tied to
// the HTTP status they map to in `toErrorResponse`, the one place where errors become responses, and
// their messages are safe to show to the caller; the queue consumers' and the closer's end up in logs,
// SQS redrive or a failed invocation.
import type { Channel } from "../domain/consent.ts";
import { maskAddress } from "../domain/privacy.ts";
import type { OutboundSendResult } from "./mirror/ports.ts";

// ---- Webhook ----------------------------------------------------------------------------------------

export class RequestRejectedError extends Error {
  override name = "RequestRejectedError";
  readonly status: 400 | 403 | 404 | 405 | 413 | 415;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: RequestRejectedError["status"],
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/** A dependency (DynamoDB, SQS, Secrets Manager) failed: nothing was acknowledged, Twilio may redeliver. */
export class DependencyError extends Error {
  override name = "DependencyError";
}

// ---- Mirror -----------------------------------------------------------------------------------------

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

/** The recipient opted out of messages from this sender (STOP) and did not opt back in: nothing was sent. */
export class RecipientOptedOutError extends Error {
  override name = "RecipientOptedOutError";
  readonly channel: Channel;
  /** Masked: the error may end up in a caller's logs. */
  readonly maskedAddress: string;
  constructor(recipient: { readonly channel: Channel; readonly address: string }) {
    const maskedAddress = maskAddress(recipient.address) ?? "••••";
    super(
      `the ${recipient.channel} recipient ${maskedAddress} has opted out of messages from this sender; nothing was sent`,
    );
    this.channel = recipient.channel;
    this.maskedAddress = maskedAddress;
  }
}

/**
 * The consent store could not say whether the recipient opted out, so nothing was sent (fail-closed).
 * Retrying later is safe.
 */
export class ConsentUnavailableError extends Error {
  override name = "ConsentUnavailableError";
  constructor(options: { readonly cause: unknown }) {
    super("the consent check could not be completed; nothing was sent", options);
  }
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

// ---- Closer -----------------------------------------------------------------------------------------

export class InvalidCloserRequestError extends Error {
  override name = "InvalidCloserRequestError";
}

/** A run stopped because retrying row by row cannot help (credentials, registry unavailable). */
export class CloserRunAbortedError extends Error {
  override name = "CloserRunAbortedError";
}
