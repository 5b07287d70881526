// Errors the webhook use case raises, each tied to the HTTP status it maps to in `toErrorResponse`,
// the one place where errors become responses. Messages are safe to show to the caller.

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
