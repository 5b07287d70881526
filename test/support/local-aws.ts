// Real DynamoDB Local + fauxqs for integration tests: the run-wide pair from the global setup when
// present, else a pair started for this file. Each caller gets its own freshly provisioned tables/queues.
import { randomBytes } from "node:crypto";
import { after } from "node:test";
import { startDynamoDbLocal } from "../../lib/local/dynamodb-local.ts";
import { localClients, type ProvisionedResources, provision } from "../../lib/local/provision.ts";
import { LocalAccountId, startSqsLocal } from "../../lib/local/sqs-local.ts";

export type LocalAws = {
  readonly endpoints: { readonly dynamodb: string; readonly sqs: string };
  readonly resources: ProvisionedResources;
  readonly clients: ReturnType<typeof localClients>;
  /** The AWS part of a function's environment: region, fake credentials and the standard endpoint vars. */
  readonly awsEnv: Record<string, string>;
};

let shared: Promise<{ dynamodb: string; sqs: string }> | undefined;
const cleanups: (() => unknown)[] = [];
// Registered at import time so it belongs to the file's root, not to whichever hook first needs AWS.
after(() => Promise.all(cleanups.map((cleanup) => cleanup())));

const endpoints = (): Promise<{ dynamodb: string; sqs: string }> => {
  shared ??= (async () => {
    const fromSetup = { dynamodb: process.env.TEST_DYNAMODB_ENDPOINT, sqs: process.env.TEST_SQS_ENDPOINT };
    if (fromSetup.dynamodb && fromSetup.sqs) return { dynamodb: fromSetup.dynamodb, sqs: fromSetup.sqs };
    const [dynamodb, sqs] = await Promise.all([startDynamoDbLocal(), startSqsLocal()]);
    cleanups.push(
      () => dynamodb.stop(),
      () => sqs.stop(),
    );
    return { dynamodb: dynamodb.endpoint, sqs: sqs.endpoint };
  })();
  return shared;
};

export const localAws = async (): Promise<LocalAws> => {
  const ends = await endpoints();
  const prefix = `t${randomBytes(4).toString("hex")}`;
  const resources = await provision(ends, (name) => `${ends.sqs}/${LocalAccountId}/${name}`, prefix);
  const clients = localClients(ends);
  cleanups.unshift(() => {
    clients.dynamodb.destroy();
    clients.sqs.destroy();
  });
  return {
    endpoints: ends,
    resources,
    clients,
    awsEnv: {
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: ends.dynamodb,
      AWS_ENDPOINT_URL_SQS: ends.sqs,
    },
  };
};
