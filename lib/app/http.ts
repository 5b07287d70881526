// Framework-neutral HTTP request/response types for the webhook, and the single error → response map.
import { DependencyError, RequestRejectedError } from "./errors.ts";

export type HttpRequest = {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  /** Header names lower-cased (API Gateway HTTP API already does this; the adapter guarantees it). */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
  /** Epoch ms when the front door received the request. */
  readonly receivedAt: number;
};

export type HttpResponse = {
  readonly statusCode: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
};

export const emptyResponse = (statusCode: number): HttpResponse => ({ statusCode });

export const textResponse = (
  statusCode: number,
  body: string,
  contentType = "text/plain; charset=utf-8",
) => ({
  statusCode,
  headers: { "content-type": contentType },
  body,
});

export const toErrorResponse = (error: unknown): HttpResponse => {
  if (error instanceof RequestRejectedError) {
    return { ...textResponse(error.status, `${error.message}\n`), headers: withText(error.headers) };
  }
  if (error instanceof DependencyError) {
    return {
      ...textResponse(503, "temporarily unavailable, retry\n"),
      headers: withText({ "retry-after": "1" }),
    };
  }
  // Anything else is a defect: answer 500 without internals; the request log carries the error.
  return textResponse(500, "internal error\n");
};

const withText = (headers: Readonly<Record<string, string>>) => ({
  "content-type": "text/plain; charset=utf-8",
  ...headers,
});
