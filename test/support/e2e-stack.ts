// The local stack for one end-to-end test file: builds the function bundles the file needs when they
// are missing (`npm test` builds them all first), starts the stack with the Twilio emulator on free
// ports, and offers what those tests do with it: signed webhooks through the HTTP front door, waiting
// until a queue consumer processed an event, and the twilio SDK and AWS clients pointed at the emulators.
import { existsSync } from "node:fs";
import { join } from "node:path";
import twilio from "twilio";
import { parseEnvelope } from "../../lib/domain/queue-envelope.ts";
import { localClients } from "../../lib/local/provision.ts";
import {
  EmulatedTwilioAccount,
  type InvocationRecord,
  type LocalStack,
  type LocalStackOptions,
  startLocalStack,
} from "../../lib/local/stack.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import { encodeForm, signatureFor, twilioHeaders } from "../../lib/local/twilio-webhooks.ts";
import type { FunctionName } from "../../lib/resources.ts";
import { buildFunction, distDir } from "../../lib/tools/build.ts";

export type E2eStack = {
  readonly stack: LocalStack;
  readonly emulator: TwilioEmulator;
  /** The twilio SDK, talking to the emulator as the stack's functions do. */
  readonly sdk: ReturnType<typeof twilio>;
  readonly aws: ReturnType<typeof localClients>;
  /** POSTs a webhook signed exactly as Twilio would sign it for the stack's public URL. */
  webhook(path: string, params: Record<string, string>): Promise<{ status: number; body: string }>;
  /** Resolves once `functionName` processed (and deleted) the queue record of `eventId` successfully. */
  processed(functionName: FunctionName, eventId: string, timeoutMs: number): Promise<InvocationRecord>;
  stop(): Promise<void>;
};

export const startE2eStack = async (
  bundles: readonly FunctionName[],
  options: LocalStackOptions = {},
): Promise<E2eStack> => {
  for (const name of bundles) {
    if (!existsSync(join(distDir(name), "index.mjs"))) await buildFunction(name);
  }
  const stack = await startLocalStack({
    port: 0,
    schedules: false,
    queueDepthIntervalMs: 0,
    ...options,
  });
  const emulator = stack.twilioEmulator;
  if (emulator === undefined) {
    await stack.stop();
    throw new Error("the stack should run the Twilio emulator");
  }
  const { accountSid, authToken } = EmulatedTwilioAccount;
  const sdk = twilio(accountSid, authToken, { autoRetry: false });
  sdk.conversations.baseUrl = emulator.url;
  sdk.api.baseUrl = emulator.url;
  const aws = localClients({
    dynamodb: stack.stackInfo.aws.dynamodbEndpoint,
    sqs: stack.stackInfo.aws.sqsEndpoint,
  });
  return {
    stack,
    emulator,
    sdk,
    aws,
    webhook: async (path, params) => {
      const signature = signatureFor(authToken, `${stack.stackInfo.publicWebhookBaseUrl}${path}`, params);
      const response = await fetch(`${stack.apiUrl}${path}`, {
        method: "POST",
        headers: twilioHeaders(signature),
        body: encodeForm(params),
      });
      return { status: response.status, body: await response.text() };
    },
    processed: (functionName, eventId, timeoutMs) =>
      stack.waitForInvocation(
        (record) =>
          record.functionName === functionName &&
          record.batch !== undefined &&
          record.batch.records.some(
            (message) =>
              parseEnvelope(message.body).eventId === eventId &&
              record.batch?.deleted.includes(message.messageId),
          ),
        timeoutMs,
      ),
    stop: async () => {
      aws.dynamodb.destroy();
      aws.sqs.destroy();
      await stack.stop();
    },
  };
};
