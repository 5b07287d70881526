// The proxies the interposed emulator starters put in front of DynamoDB Local and fauxqs, by service,
// so a fault scenario can cut and restore them. One module instance per process.
import type { TcpProxy } from "../tcp-proxy.ts";

export type ProxiedService = "dynamodb" | "sqs";

const proxies = new Map<ProxiedService, TcpProxy>();

export const registerProxy = (service: ProxiedService, proxy: TcpProxy): void => {
  proxies.set(service, proxy);
};

export const proxyFor = (service: ProxiedService): TcpProxy => {
  const proxy = proxies.get(service);
  if (proxy === undefined) {
    throw new Error(
      `no ${service} proxy: lib/local/stack.ts did not import lib/local/${service === "sqs" ? "sqs-local" : "dynamodb-local"}.ts, which test/faults/interpose/hooks.ts redirects — if the stack now starts its emulators another way, redirect that instead`,
    );
  }
  return proxy;
};
