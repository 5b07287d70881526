// Stands in for lib/local/dynamodb-local.ts when the local stack imports it under the fault scenarios
// (redirected by test/faults/interpose/hooks.ts): the real DynamoDB Local behind a TCP proxy the
// scenario can cut, so "DynamoDB stops and comes back" keeps the tables' in-memory state.
import {
  type DynamoDbLocal,
  startDynamoDbLocal as startRealDynamoDbLocal,
} from "../../../lib/local/dynamodb-local.ts";
import { startTcpProxy } from "../tcp-proxy.ts";
import { registerProxy } from "./registry.ts";

export type { DynamoDbLocal };

export const startDynamoDbLocal = async (options: { port?: number } = {}): Promise<DynamoDbLocal> => {
  const real = await startRealDynamoDbLocal(options);
  const proxy = await startTcpProxy(real.endpoint);
  registerProxy("dynamodb", proxy);
  return {
    endpoint: proxy.url,
    port: proxy.port,
    stop: async () => {
      await proxy.stop();
      await real.stop();
    },
  };
};
