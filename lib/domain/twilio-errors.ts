// Twilio REST error codes this system branches on, and how each failure class is handled. Branch on
// the code, not the HTTP status (Twilio reuses 400/409 for very different conditions).

export const TwilioErrorCode = {
  authentication: 20003,
  notFound: 20404,
  tooManyRequests: 20429,
  optedOut: 21610,
  uniqueNameExists: 50353,
  closedConversationImmutable: 50377,
  bindingInUse: 50416,
  participantExists: 50433,
  groupParticipantExists: 50437,
} as const;

/** What a caller may do about a failed Twilio call. */
export type FailureClass =
  /** 20429, 5xx, timeouts and network errors: nothing was processed; retry with backoff and jitter. */
  | "retryable"
  /** 20003 and other auth problems: configuration is wrong; fail loudly, retries cannot help. */
  | "configuration"
  /** Everything else (4xx): the request itself is wrong for the current state; do not retry blindly. */
  | "permanent";

/** A failed Twilio call, as the adapter reports it (twilio-node's RestException has the same fields). */
export class TwilioApiError extends Error {
  override name = "TwilioApiError";
  readonly status: number | undefined;
  readonly code: number | undefined;

  constructor(
    message: string,
    details: { status?: number | undefined; code?: number | undefined; cause?: unknown },
  ) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.code = details.code;
  }
}

export const classifyTwilioFailure = (error: unknown): FailureClass => {
  if (!(error instanceof TwilioApiError)) return "retryable";
  if (error.code === TwilioErrorCode.tooManyRequests || error.status === 429) return "retryable";
  if (error.status === undefined || error.status >= 500) return "retryable";
  if (error.code === TwilioErrorCode.authentication || error.status === 401 || error.status === 403) {
    return "configuration";
  }
  return "permanent";
};

export const hasTwilioCode = (error: unknown, ...codes: readonly number[]): error is TwilioApiError =>
  error instanceof TwilioApiError && error.code !== undefined && codes.includes(error.code);

/** 50416's message names the conversation that holds the binding ("… already exists in Conversation CH…"). */
export const conflictingConversationSid = (error: TwilioApiError): string | undefined =>
  /Conversation\s+(CH[0-9a-fA-F]{32})/.exec(error.message)?.[1];
