// Where the closer's resumable cursor lives between runs: one item in the conversations table
// (pk `CLOSER#cursor`), so a run that stopped early hands its position to the next scheduled run.
// The item is outside the registry's key space (`CONV#…`) and never carries `activityShard`, so the
// closer's own index queries cannot see it.
import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { CursorStore } from "../app/closer.ts";
import { Tables } from "../resources.ts";

const key = {
  [Tables.conversations.partitionKey.name]: { S: "CLOSER#cursor" },
  [Tables.conversations.sortKey.name]: { S: "CURSOR" },
};

export const dynamoCloserCursorStore = (client: DynamoDBClient, tableName: string): CursorStore => ({
  async load() {
    const result = await client.send(
      new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }),
    );
    return result.Item?.cursor?.S;
  },

  async save(cursor: string, at: number) {
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { ...key, cursor: { S: cursor }, savedAt: { N: String(at) } },
      }),
    );
  },

  async clear() {
    await client.send(new DeleteItemCommand({ TableName: tableName, Key: key }));
  },
});
