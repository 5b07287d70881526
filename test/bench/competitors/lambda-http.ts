// The thinnest HTTP front for a Lambda bundle, so a Lambda build and a plain HTTP server (Express) are
// compared over the same transport: read the body, build the HTTP API 2.0 event API Gateway would build
// (lower-cased headers, base64 form body, raw path and query), call `handler`, write its result. No
// routing, no timeouts, no logging — only what any front must do. In `floor` mode the body is the
// floor's JSON envelope and is handed over parsed, so the floor stays free of handler logic.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";

type LambdaResult = { statusCode?: number; headers?: Record<string, unknown>; body?: string };
export type LambdaHandler = (event: unknown, context: unknown) => Promise<LambdaResult>;

export type LambdaHttpServer = { readonly url: string; close(): Promise<void> };

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
};

const apiGatewayEvent = (req: IncomingMessage, body: Buffer) => {
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString: queryAt === -1 ? "" : url.slice(queryAt + 1),
    headers,
    requestContext: {
      http: { method: req.method ?? "GET", path: rawPath, protocol: "HTTP/1.1", sourceIp: "127.0.0.1" },
      requestId: randomUUID(),
      stage: "$default",
      timeEpoch: Date.now(),
    },
    body: body.toString("base64"),
    isBase64Encoded: true,
  };
};

export const startLambdaHttp = async (
  handler: LambdaHandler,
  options: { readonly port?: number; readonly mode: "api-gateway" | "floor"; readonly functionName: string },
): Promise<LambdaHttpServer> => {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const event = options.mode === "floor" ? JSON.parse(body.toString("utf8")) : apiGatewayEvent(req, body);
      const context = {
        awsRequestId: randomUUID(),
        functionName: options.functionName,
        getRemainingTimeInMillis: () => 10_000,
      };
      const result = await handler(event, context);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
      res.writeHead(result.statusCode ?? 200, headers).end(result.body ?? "");
    })().catch((error: unknown) => {
      console.error("invocation failed:", error);
      res.writeHead(502).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
};
