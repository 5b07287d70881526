// The benchmark floor: the same two calls the webhook makes (its conditional PutItem and its FIFO
// SendMessage, byte-for-byte the same shapes) issued directly, with no handler logic at all. Bundled
// exactly like the functions, so the ratio to it measures only what our code adds.
import { randomUUID } from "node:crypto";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";

const dynamodb = new DynamoDBClient({});
const sqs = new SQSClient({});
const table = process.env.DEDUPE_TABLE_NAME;
const queueUrl = process.env.CONSENT_QUEUE_URL;

type FloorEvent = { readonly eventId: string; readonly groupId: string; readonly body: string };

export const handler = async (event: FloorEvent) => {
  const now = Date.now();
  await dynamodb.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        eventId: { S: event.eventId },
        token: { S: randomUUID() },
        firstSeenAt: { N: String(now) },
        expiresAt: { N: String(Math.floor(now / 1000) + 604800) },
      },
      ConditionExpression: "attribute_not_exists(#pk) OR #expiresAt < :now",
      ExpressionAttributeNames: { "#pk": "eventId", "#expiresAt": "expiresAt" },
      ExpressionAttributeValues: { ":now": { N: String(Math.floor(now / 1000)) } },
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    }),
  );
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: event.body,
      MessageGroupId: event.groupId,
      MessageDeduplicationId: event.eventId,
    }),
  );
  return { statusCode: 200 };
};
