// node --test global setup: one DynamoDB Local and one fauxqs for the whole run, shared by every test file
// through environment variables (test files run in child processes that inherit this process's env).
import { type DynamoDbLocal, startDynamoDbLocal } from "../../lib/local/dynamodb-local.ts";
import { type SqsLocal, startSqsLocal } from "../../lib/local/sqs-local.ts";

let dynamodb: DynamoDbLocal | undefined;
let sqs: SqsLocal | undefined;

export const globalSetup = async (): Promise<void> => {
  [dynamodb, sqs] = await Promise.all([startDynamoDbLocal(), startSqsLocal()]);
  process.env.TEST_DYNAMODB_ENDPOINT = dynamodb.endpoint;
  process.env.TEST_SQS_ENDPOINT = sqs.endpoint;
};

export const globalTeardown = async (): Promise<void> => {
  await Promise.all([dynamodb?.stop(), sqs?.stop()]);
};
