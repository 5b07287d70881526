// The local stand-in for the API Gateway HTTP API: turns an HTTP request into the payload-2.0 event the
// deployed webhook function receives and maps its structured result back, with HTTP API's limits and its
// own error answers. Raw bytes matter here: Twilio signs the URL it called, so `rawPath` and
// `rawQueryString` are cut from the request target exactly as it arrived (never re-serialized from a
// parsed URL, which would turn `'` into `%27` or `+` into `%20`), and the body reaches the function as the
// exact bytes sent (base64 unless the media type is one HTTP API passes as text).
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { PortInUseError } from "./errors.ts";
import type { Invocation } from "./lambda-runner.ts";

/** HTTP API limits (API Gateway quotas): payload size and integration timeout, both hard. */
export const HttpApiLimits = { maxBodyBytes: 10 * 1024 * 1024, integrationTimeoutSeconds: 30 } as const;

/** A route of the API: `routeKey` as HTTP API writes it (`POST /twilio/conversations`). */
export type Route = {
  readonly routeKey: string;
  readonly functionName: string;
  readonly invoke: (event: APIGatewayProxyEventV2) => Promise<Invocation>;
};

/** A request for the stack itself (`/_local/...`), which API Gateway would never see. */
export type LocalRequest = {
  readonly method: string;
  readonly rawPath: string;
  readonly searchParams: URLSearchParams;
  readonly body: Buffer;
};
export type LocalResponse = { readonly status: number; readonly body: unknown };

export type RequestReport = {
  readonly method: string;
  readonly rawPath: string;
  readonly status: number;
  readonly ms: number;
  readonly route?: Route;
  readonly event?: APIGatewayProxyEventV2;
  readonly invocation?: Invocation;
  /** Why the front door answered itself instead of the function (413, 404, 503, 500). */
  readonly gatewayError?: string;
};

export type FrontDoorOptions = {
  readonly port: number;
  readonly host: string;
  /** Name of the variable that sets `port`, for the "port in use" message. */
  readonly portVariable: string;
  readonly accountId: string;
  readonly apiId: string;
  readonly routes: readonly Route[];
  readonly integrationTimeoutSeconds?: number;
  readonly local?: (request: LocalRequest) => Promise<LocalResponse | undefined>;
  readonly onRequest?: (report: RequestReport) => void;
  /** Requests that arrive before this settles wait for it (the port is bound first, to fail fast). */
  readonly ready?: Promise<unknown>;
};

export type FrontDoor = {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
};

export type RawRequest = {
  readonly method: string;
  /** The request target exactly as sent (`req.url`). */
  readonly target: string;
  readonly httpVersion: string;
  /** Header names and values in arrival order, as `req.rawHeaders`. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly receivedAt: number;
};

const textMediaTypes = new Set(["application/json", "application/xml", "application/javascript"]);

/** HTTP API passes these bodies as text; everything else (form posts included) arrives base64-encoded. */
export const isTextMediaType = (contentType: string | undefined): boolean => {
  const media = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return media.startsWith("text/") || textMediaTypes.has(media);
};

/** `/p?q` → path and query, byte for byte; an absolute-form target loses only its scheme and authority. */
export const splitTarget = (target: string): { rawPath: string; rawQueryString: string } => {
  const originForm = target.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/, "") || "/";
  const withoutFragment = originForm.split("#")[0] ?? "";
  const question = withoutFragment.indexOf("?");
  return question < 0
    ? { rawPath: withoutFragment, rawQueryString: "" }
    : { rawPath: withoutFragment.slice(0, question), rawQueryString: withoutFragment.slice(question + 1) };
};

const decodeQueryComponent = (text: string): string => {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return text;
  }
};

const queryParameters = (rawQueryString: string): Record<string, string> | undefined => {
  if (rawQueryString === "") return undefined;
  const parameters: Record<string, string> = {};
  for (const pair of rawQueryString.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const name = decodeQueryComponent(equals < 0 ? pair : pair.slice(0, equals));
    const value = decodeQueryComponent(equals < 0 ? "" : pair.slice(equals + 1));
    parameters[name] = name in parameters ? `${parameters[name]},${value}` : value;
  }
  return parameters;
};

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (value: number): string => String(value).padStart(2, "0");
/** `24/Nov/2026:12:00:00 +0000`, the format of `requestContext.time`. */
const requestTime = (epoch: number): string => {
  const date = new Date(epoch);
  return `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
};

/** API Gateway request ids look like `JKJaXmPLvHcESHA=`. */
const requestId = (): string => randomBytes(10).toString("base64");

const traceHeader = (epoch: number): string =>
  `Root=1-${Math.floor(epoch / 1000).toString(16)}-${randomBytes(12).toString("hex")}`;

/**
 * The payload-2.0 event for `request`: header names lower-cased and duplicates comma-joined, cookies
 * moved to `cookies`, the X-Forwarded-* headers API Gateway adds, and a filled `requestContext`.
 */
export const toHttpApiEvent = (
  request: RawRequest,
  context: {
    readonly routeKey: string;
    readonly accountId: string;
    readonly apiId: string;
    readonly port: number;
  },
): APIGatewayProxyEventV2 => {
  const { rawPath, rawQueryString } = splitTarget(request.target);
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) {
    const name = (request.rawHeaders[index] ?? "").toLowerCase();
    const value = request.rawHeaders[index + 1] ?? "";
    if (name === "cookie") {
      cookies.push(
        ...value
          .split(";")
          .map((cookie) => cookie.trim())
          .filter(Boolean),
      );
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  headers["x-forwarded-for"] = headers["x-forwarded-for"]
    ? `${headers["x-forwarded-for"]}, ${request.sourceIp}`
    : request.sourceIp;
  headers["x-forwarded-port"] = String(context.port);
  headers["x-forwarded-proto"] = "http";
  headers["x-amzn-trace-id"] = traceHeader(request.receivedAt);
  const host = headers.host ?? `127.0.0.1:${context.port}`;
  const queryStringParameters = queryParameters(rawQueryString);
  const hasBody = request.body.length > 0;
  const asText = isTextMediaType(headers["content-type"]);
  return {
    version: "2.0",
    routeKey: context.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(queryStringParameters === undefined ? {} : { queryStringParameters }),
    requestContext: {
      accountId: context.accountId,
      apiId: context.apiId,
      domainName: host,
      domainPrefix: host.split(".")[0]?.split(":")[0] ?? host,
      http: {
        method: request.method,
        path: rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.sourceIp,
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: requestId(),
      routeKey: context.routeKey,
      stage: "$default",
      time: requestTime(request.receivedAt),
      timeEpoch: request.receivedAt,
    },
    ...(hasBody ? { body: request.body.toString(asText ? "utf8" : "base64") } : {}),
    isBase64Encoded: hasBody && !asText,
  };
};

export type HttpAnswer = {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: Buffer;
};

const gatewayAnswer = (status: number, message: string): HttpAnswer => ({
  status,
  headers: { "content-type": "application/json" },
  body: Buffer.from(JSON.stringify({ message })),
});

export const GatewayAnswers = {
  notFound: () => gatewayAnswer(404, "Not Found"),
  tooLarge: () => gatewayAnswer(413, "Request Entity Too Large"),
  internalError: () => gatewayAnswer(500, "Internal Server Error"),
  unavailable: () => gatewayAnswer(503, "Service Unavailable"),
} as const;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Maps a function's response the way payload format 2.0 does: a structured result (with `statusCode`)
 * is used as given; any other valid JSON becomes a 200 `application/json` answer with that JSON as body.
 * A malformed structured result is an integration failure, answered 500 by the gateway.
 */
export const fromLambdaResult = (payload: unknown): HttpAnswer | undefined => {
  if (!isRecord(payload) || !("statusCode" in payload)) {
    const body = typeof payload === "string" ? payload : JSON.stringify(payload);
    return { status: 200, headers: { "content-type": "application/json" }, body: Buffer.from(body) };
  }
  const { statusCode, headers, body, isBase64Encoded, cookies } = payload;
  if (
    typeof statusCode !== "number" ||
    !Number.isInteger(statusCode) ||
    statusCode < 100 ||
    statusCode > 599
  ) {
    return undefined;
  }
  const mapped: Record<string, string | readonly string[]> = {};
  if (headers !== undefined && headers !== null) {
    if (!isRecord(headers)) return undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
        return undefined;
      mapped[name.toLowerCase()] = String(value);
    }
  }
  if (Array.isArray(cookies) && cookies.length > 0) mapped["set-cookie"] = cookies.map(String);
  if (body !== undefined && body !== null && typeof body !== "string") return undefined;
  const bytes = Buffer.from(body ?? "", isBase64Encoded === true ? "base64" : "utf8");
  return { status: statusCode, headers: mapped, body: bytes };
};

const sourceIpOf = (req: IncomingMessage): string =>
  (req.socket.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, "");

/** Reads the body up to the limit; past it, keeps draining so the client still reads our 413. */
const readBody = async (req: IncomingMessage, limit: number): Promise<Buffer | undefined> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer: Buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size <= limit) chunks.push(buffer);
  }
  return size > limit ? undefined : Buffer.concat(chunks);
};

const send = (res: ServerResponse, answer: HttpAnswer, gatewayRequestId: string): void => {
  res.writeHead(answer.status, {
    ...answer.headers,
    "content-length": String(answer.body.length),
    "apigw-requestid": gatewayRequestId,
  });
  res.end(answer.body);
};

const withTimeout = <T>(work: Promise<T>, ms: number): Promise<T | undefined> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });

export const startFrontDoor = async (options: FrontDoorOptions): Promise<FrontDoor> => {
  const routes = new Map(options.routes.map((route) => [route.routeKey, route]));
  const integrationTimeoutMs =
    (options.integrationTimeoutSeconds ?? HttpApiLimits.integrationTimeoutSeconds) * 1000;
  let boundPort = options.port;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const receivedAt = Date.now();
    const method = req.method ?? "GET";
    const target = req.url ?? "/";
    const { rawPath, rawQueryString } = splitTarget(target);
    const gatewayRequestId = requestId();
    const report = (answer: HttpAnswer, extra: Partial<RequestReport> = {}): void => {
      send(res, answer, gatewayRequestId);
      options.onRequest?.({
        method,
        rawPath,
        status: answer.status,
        ms: Math.round(performance.now() - started),
        ...extra,
      });
    };
    await options.ready;

    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > HttpApiLimits.maxBodyBytes) {
      req.resume();
      report(GatewayAnswers.tooLarge(), { gatewayError: "body over 10 MB" });
      return;
    }
    const body = await readBody(req, HttpApiLimits.maxBodyBytes);
    if (body === undefined) {
      report(GatewayAnswers.tooLarge(), { gatewayError: "body over 10 MB" });
      return;
    }

    if (rawPath.startsWith("/_local/") && options.local !== undefined) {
      const answer = await options.local({
        method,
        rawPath,
        searchParams: new URLSearchParams(rawQueryString),
        body,
      });
      if (answer !== undefined) {
        report({
          status: answer.status,
          headers: { "content-type": "application/json" },
          body: Buffer.from(`${JSON.stringify(answer.body, null, 2)}\n`),
        });
        return;
      }
    }

    const route = routes.get(`${method} ${rawPath}`);
    if (route === undefined) {
      report(GatewayAnswers.notFound(), { gatewayError: "no route" });
      return;
    }
    const event = toHttpApiEvent(
      {
        method,
        target,
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body,
        sourceIp: sourceIpOf(req),
        receivedAt,
      },
      { routeKey: route.routeKey, accountId: options.accountId, apiId: options.apiId, port: boundPort },
    );
    const invocation = await withTimeout(route.invoke(event), integrationTimeoutMs);
    if (invocation === undefined) {
      report(GatewayAnswers.unavailable(), {
        route,
        event,
        gatewayError: `integration timed out after ${integrationTimeoutMs / 1000} s`,
      });
      return;
    }
    if (invocation.result.status !== "ok") {
      report(GatewayAnswers.internalError(), {
        route,
        event,
        invocation,
        gatewayError: `${invocation.result.error.errorType}: ${invocation.result.error.errorMessage}`,
      });
      return;
    }
    const answer = fromLambdaResult(invocation.result.payload);
    if (answer === undefined) {
      report(GatewayAnswers.internalError(), {
        route,
        event,
        invocation,
        gatewayError: "malformed Lambda response",
      });
      return;
    }
    report(answer, { route, event, invocation });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      console.error("front door failed to answer a request", error);
      if (!res.headersSent) send(res, GatewayAnswers.internalError(), requestId());
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new PortInUseError(options.port, options.portVariable, { cause: error })
          : error,
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  boundPort = isAddressInfo(address) ? address.port : options.port;

  return {
    url: `http://${options.host}:${boundPort}`,
    port: boundPort,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};

const isAddressInfo = (value: unknown): value is AddressInfo =>
  typeof value === "object" && value !== null && "port" in value;
