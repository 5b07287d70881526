// The conversation registry on DynamoDB: one row per conversation (SID, tenant, state, last activity)
// kept current by the mirror from every Conversations event and mirrored message, and read by the
// stale-conversation closer through the sparse `byActivity` index. Only conversations that can still
// be closed (active/inactive) carry `activityShard`, so the index holds exactly the closable ones and a
// range query on `lastActivityAt` reads only the stale ones.
import { createHash } from "node:crypto";
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { Tables } from "../resources.ts";

export type ConversationState = "initializing" | "active" | "inactive" | "closed" | "deleted";

export type RegistryRow = {
  readonly conversationSid: string;
  readonly tenantId: string;
  readonly state: ConversationState;
  /** Epoch ms of the last activity we observed (a message or a Conversations event). */
  readonly lastActivityAt: number;
  /** Epoch ms of the event that set `state` (state changes are monotonic in event time). */
  readonly stateAt: number;
  readonly priority: string | undefined;
  readonly closeOutcome: string | undefined;
};

export type StaleCursor = { readonly shard: number; readonly lastKey?: Record<string, AttributeValue> };

export type StalePage = {
  readonly rows: readonly RegistryRow[];
  /** Undefined when every shard has been read to the end. */
  readonly next: StaleCursor | undefined;
};

/** Index partitions: spreads the closable set so one hot key never throttles writes. */
export const ActivityShards = 8;

const [byActivity] = Tables.conversations.indexes;
const pkName = Tables.conversations.partitionKey.name;
const skName = Tables.conversations.sortKey.name;

export const registryKey = (conversationSid: string): Record<string, AttributeValue> => ({
  [pkName]: { S: `CONV#${conversationSid}` },
  [skName]: { S: "REGISTRY" },
});

export const activityShardOf = (conversationSid: string): string => {
  const shard = createHash("sha256").update(conversationSid).digest().readUInt32BE(0) % ActivityShards;
  return `ACTIVE#${shard}`;
};

const isClosable = (state: ConversationState): boolean => state === "active" || state === "inactive";

const toRow = (item: Record<string, AttributeValue>): RegistryRow => ({
  conversationSid: item.conversationSid?.S ?? "",
  tenantId: item.tenantId?.S ?? "",
  state: parseState(item.state?.S),
  lastActivityAt: Number(item.lastActivityAt?.N ?? 0),
  stateAt: Number(item.stateAt?.N ?? 0),
  priority: item.priority?.S,
  closeOutcome: item.closeOutcome?.S,
});

const parseState = (value: string | undefined): ConversationState =>
  value === "initializing" || value === "inactive" || value === "closed" || value === "deleted"
    ? value
    : "active";

export type ConversationRegistry = ReturnType<typeof dynamoConversationRegistry>;

export const dynamoConversationRegistry = (client: DynamoDBClient, tableName: string) => ({
  /**
   * Records activity at `at` (epoch ms). Monotonic: an older event never moves `lastActivityAt` back.
   * Creates the row on first sight with the given tenant and state (default active).
   */
  async touch(input: {
    conversationSid: string;
    tenantId: string;
    at: number;
    priority?: string | undefined;
  }): Promise<void> {
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: registryKey(input.conversationSid),
          UpdateExpression:
            "SET lastActivityAt = :at, conversationSid = :sid, tenantId = if_not_exists(tenantId, :tenant), " +
            "#state = if_not_exists(#state, :active), stateAt = if_not_exists(stateAt, :zero)" +
            (input.priority === undefined ? "" : ", priority = :priority"),
          // Only forward in time; a closed row keeps its state (activity on a closed thread is not
          // possible in Twilio; a late event must not resurrect it into the closable index).
          ConditionExpression: "attribute_not_exists(lastActivityAt) OR lastActivityAt < :at",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: {
            ":at": { N: String(input.at) },
            ":sid": { S: input.conversationSid },
            ":tenant": { S: input.tenantId },
            ":active": { S: "active" },
            ":zero": { N: "0" },
            ...(input.priority === undefined ? {} : { ":priority": { S: input.priority } }),
          },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return;
    }
    // Put the row into the closable index unless it is already closed; a separate conditional update
    // keeps the state guard simple.
    await client
      .send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: registryKey(input.conversationSid),
          UpdateExpression: "SET activityShard = :shard",
          ConditionExpression: "#state IN (:active, :inactive)",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: {
            ":shard": { S: activityShardOf(input.conversationSid) },
            ":active": { S: "active" },
            ":inactive": { S: "inactive" },
          },
        }),
      )
      .catch((error: unknown) => {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      });
  },

  /**
   * Sets the state as of event time `at`. Monotonic in event time; `closed` and `deleted` leave the
   * closable index. `outcome` records why (e.g. "closed-by-closer", "timer").
   */
  async setState(input: {
    conversationSid: string;
    tenantId: string;
    state: ConversationState;
    at: number;
    outcome?: string | undefined;
  }): Promise<boolean> {
    const closable = isClosable(input.state);
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: registryKey(input.conversationSid),
          UpdateExpression:
            "SET #state = :state, stateAt = :at, conversationSid = :sid, tenantId = if_not_exists(tenantId, :tenant), " +
            "lastActivityAt = if_not_exists(lastActivityAt, :at)" +
            (closable ? ", activityShard = :shard" : "") +
            (input.outcome === undefined ? "" : ", closeOutcome = :outcome") +
            (closable ? "" : " REMOVE activityShard"),
          ConditionExpression: "attribute_not_exists(stateAt) OR stateAt <= :at",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: {
            ":state": { S: input.state },
            ":at": { N: String(input.at) },
            ":sid": { S: input.conversationSid },
            ":tenant": { S: input.tenantId },
            ...(closable ? { ":shard": { S: activityShardOf(input.conversationSid) } } : {}),
            ...(input.outcome === undefined ? {} : { ":outcome": { S: input.outcome } }),
          },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  },

  async get(conversationSid: string): Promise<RegistryRow | undefined> {
    const result = await client.send(
      new GetItemCommand({ TableName: tableName, Key: registryKey(conversationSid), ConsistentRead: true }),
    );
    return result.Item === undefined ? undefined : toRow(result.Item);
  },

  /**
   * One page of closable conversations idle since before `olderThan` (epoch ms), oldest first within a
   * shard. Reads only index entries below the threshold: cost grows with the stale count only.
   */
  async stale(olderThan: number, cursor: StaleCursor = { shard: 0 }, limit = 100): Promise<StalePage> {
    const result = await client.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: byActivity.name,
        KeyConditionExpression: "activityShard = :shard AND lastActivityAt < :threshold",
        ExpressionAttributeValues: {
          ":shard": { S: `ACTIVE#${cursor.shard}` },
          ":threshold": { N: String(olderThan) },
        },
        Limit: limit,
        ...(cursor.lastKey === undefined ? {} : { ExclusiveStartKey: cursor.lastKey }),
      }),
    );
    const rows = (result.Items ?? []).map(toRow);
    const next: StaleCursor | undefined =
      result.LastEvaluatedKey !== undefined
        ? { shard: cursor.shard, lastKey: result.LastEvaluatedKey }
        : cursor.shard + 1 < ActivityShards
          ? { shard: cursor.shard + 1 }
          : undefined;
    return { rows, next };
  },
});
