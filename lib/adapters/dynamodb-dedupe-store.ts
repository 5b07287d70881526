// DedupeStore on DynamoDB: one conditional PutItem per event, and a conditional DeleteItem to give a
// claim back. Low-level client only (no lib-dynamodb): this sits on the webhook's hot path and bundle.
import { randomUUID } from "node:crypto";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { Claim, DedupeStore, OwnedClaim } from "../app/ports.ts";
import { Tables } from "../resources.ts";

const { partitionKey, ttlAttribute } = Tables.dedupe;

export type DynamoDedupeStoreOptions = {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** How long an event id stays claimed (the dedupe window); also the TTL. */
  readonly ttlSeconds: number;
};

export const dynamoDedupeStore = ({
  client,
  tableName,
  ttlSeconds,
}: DynamoDedupeStoreOptions): DedupeStore => ({
  async claim(eventId: string, now: number): Promise<Claim> {
    const token = randomUUID();
    const nowSeconds = Math.floor(now / 1000);
    try {
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            [partitionKey.name]: { S: eventId },
            token: { S: token },
            firstSeenAt: { N: String(now) },
            [ttlAttribute]: { N: String(nowSeconds + ttlSeconds) },
          },
          // TTL deletion lags by up to two days, so an expired claim is still in the table: the
          // condition compares expiry itself and lets a new claim overwrite an expired one.
          ConditionExpression: "attribute_not_exists(#pk) OR #expiresAt < :now",
          ExpressionAttributeNames: { "#pk": partitionKey.name, "#expiresAt": ttlAttribute },
          ExpressionAttributeValues: { ":now": { N: String(nowSeconds) } },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return { kind: "claimed", eventId, token };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const firstSeenAt = Number(error.Item?.firstSeenAt?.N);
      return { kind: "duplicate", eventId, firstSeenAt: Number.isFinite(firstSeenAt) ? firstSeenAt : 0 };
    }
  },

  async release(claim: OwnedClaim): Promise<void> {
    try {
      await client.send(
        new DeleteItemCommand({
          TableName: tableName,
          Key: { [partitionKey.name]: { S: claim.eventId } },
          // Only our own claim: a concurrent redelivery may already have re-claimed the id.
          ConditionExpression: "#token = :token",
          ExpressionAttributeNames: { "#token": "token" },
          ExpressionAttributeValues: { ":token": { S: claim.token } },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  },
});
