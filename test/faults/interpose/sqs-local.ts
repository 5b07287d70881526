// Stands in for lib/local/sqs-local.ts when the local stack imports it under the fault scenarios
// (redirected by test/faults/interpose/hooks.ts): starts the real fauxqs, then a TCP proxy in front of
// it, and hands the stack the proxy's endpoint and queue URLs, so everything the stack wires (functions,
// event source mappings, provisioning) talks to SQS through a connection the scenario can cut.
import {
  LocalAccountId,
  type SqsLocal,
  startSqsLocal as startRealSqsLocal,
} from "../../../lib/local/sqs-local.ts";
import { startTcpProxy } from "../tcp-proxy.ts";
import { registerProxy } from "./registry.ts";

export { LocalAccountId, type SqsLocal };

export const startSqsLocal = async (options: { port?: number } = {}): Promise<SqsLocal> => {
  const real = await startRealSqsLocal(options);
  const proxy = await startTcpProxy(real.endpoint);
  registerProxy("sqs", proxy);
  return {
    endpoint: proxy.url,
    port: proxy.port,
    queueUrl: (name) => `${proxy.url}/${LocalAccountId}/${name}`,
    stop: async () => {
      await proxy.stop();
      await real.stop();
    },
  };
};
