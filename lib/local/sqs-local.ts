// Starts the fauxqs SQS emulator in-process on loopback. Queue URLs are built on the endpoint itself
// (http://127.0.0.1:<port>/<account>/<name>) so the SDK never needs to resolve fauxqs' default
// sqs.<region>.localhost host names.
import { startFauxqs } from "fauxqs";

export type SqsLocal = {
  readonly endpoint: string;
  readonly port: number;
  queueUrl(name: string): string;
  stop(): Promise<void>;
};

export const LocalAccountId = "000000000000";

export const startSqsLocal = async (options: { port?: number } = {}): Promise<SqsLocal> => {
  const server = await startFauxqs({ port: options.port ?? 0, logger: false });
  const endpoint = server.address;
  return {
    endpoint,
    port: server.port,
    queueUrl: (name) => `${endpoint}/${LocalAccountId}/${name}`,
    stop: () => server.stop(),
  };
};
