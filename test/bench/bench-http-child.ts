// One benchmark process for an HTTP target: imports a bundle and serves it on a loopback port (our
// Lambda bundles and the floor behind the thin `lambda-http` front, Express as itself), then POSTs to it
// over a keep-alive connection from this same process, one request at a time. Cold start = import +
// listen + first response; warm = sequential round trips. Client work is identical for every HTTP
// target, so it cancels out of the ratios between them.

import { writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { pathToFileURL } from "node:url";
import { floorEvent, signedInboundPost } from "./bench-events.ts";
import { type LambdaHandler, startLambdaHttp } from "./competitors/lambda-http.ts";

const [target, bundlePath, warmupArg, countArg, outFile] = process.argv.slice(2);
if (!target || !bundlePath || !outFile)
  throw new Error("usage: bench-http-child <target> <bundle> <warmup> <count> <out>");
const warmup = Number(warmupArg);
const count = Number(countArg);
const token = process.env.TWILIO_AUTH_TOKEN ?? "";
const publicBase = process.env.PUBLIC_WEBHOOK_BASE_URL ?? "";

type Post = { readonly path: string; readonly headers: Record<string, string>; readonly body: string };

const makePost = (): Post => {
  if (target === "floor-http") {
    return {
      path: "/floor",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(floorEvent()),
    };
  }
  const post = signedInboundPost(token, publicBase);
  return {
    path: post.path,
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": post.signature },
    body: post.body,
  };
};

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

const send = (base: string, post: Post): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = request(
      `${base}${post.path}`,
      { method: "POST", agent, headers: { ...post.headers, "content-length": Buffer.byteLength(post.body) } },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
        res.once("error", reject);
      },
    );
    req.once("error", reject);
    req.end(post.body);
  });

type Started = { readonly url: string; close(): Promise<void> };

const startTarget = async (): Promise<Started> => {
  const module = await import(pathToFileURL(bundlePath).href);
  if (target === "express-redis") return module.start(0);
  const handler: LambdaHandler = module.handler;
  return startLambdaHttp(handler, {
    mode: target === "floor-http" ? "floor" : "api-gateway",
    functionName: target,
  });
};

const posts = Array.from({ length: 1 + warmup + count }, makePost);
const started = performance.now();
const server = await startTarget();
const firstStatus = posts[0] === undefined ? 0 : await send(server.url, posts[0]);
const coldMs = performance.now() - started;
if (firstStatus !== 200) throw new Error(`first request answered ${firstStatus}`);

const warm: number[] = [];
for (let i = 1; i < posts.length; i += 1) {
  const post = posts[i];
  if (post === undefined) break;
  const t0 = performance.now();
  const status = await send(server.url, post);
  const elapsed = performance.now() - t0;
  if (status !== 200) throw new Error(`request ${i} answered ${status}`);
  if (i > warmup) warm.push(elapsed);
}
const rssBytes = process.memoryUsage().rss;
agent.destroy();
await server.close();
await writeFile(outFile, JSON.stringify({ coldMs, warm, rssBytes }));
// SDK clients inside the bundle may hold idle keep-alive sockets; the measurement is done.
process.exit(0);
