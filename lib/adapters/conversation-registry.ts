// The conversation registry on DynamoDB: one row per conversation (SID, tenant, state, last activity)
// kept current by the mirror from every Conversations event and mirrored message, and read by the
// stale-conversation closer through the sparse `byActivity` index. Only conversations that can still
// be closed (active/inactive) carry `activityShard`, so the index holds exactly the closable ones and a
// range query on `lastActivityAt` reads only the stale ones.
import { createHash } from "node:crypto";
import {
  type AttributeValue,
  BatchWriteItemCommand,
  type BatchWriteItemCommandOutput,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
  type WriteRequest,
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

/** Runs a conditional update; false when the condition did not hold. */
const conditionalUpdate = async (client: DynamoDBClient, input: UpdateItemCommandInput): Promise<boolean> => {
  try {
    await client.send(new UpdateItemCommand(input));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
};

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

/**
 * `StaleCursor` as an opaque, URL-safe token: what the closer persists between runs and what an operator
 * passes back in an on-demand run's payload.
 */
export const encodeStaleCursor = (cursor: StaleCursor): string =>
  Buffer.from(JSON.stringify({ s: cursor.shard, k: cursor.lastKey })).toString("base64url");

const isKeyValue = (value: unknown): value is AttributeValue =>
  typeof value === "object" &&
  value !== null &&
  Object.keys(value).length === 1 &&
  (("S" in value && typeof value.S === "string") || ("N" in value && typeof value.N === "string"));

/** Undefined for anything this registry did not issue (tokens arrive in untrusted event payloads). */
export const decodeStaleCursor = (token: string): StaleCursor | undefined => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || !("s" in parsed)) return undefined;
  const shard = parsed.s;
  if (typeof shard !== "number" || !Number.isInteger(shard) || shard < 0 || shard >= ActivityShards) {
    return undefined;
  }
  const lastKey = "k" in parsed ? parsed.k : undefined;
  if (lastKey === undefined) return { shard };
  if (typeof lastKey !== "object" || lastKey === null || Array.isArray(lastKey)) return undefined;
  const key: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(lastKey)) {
    if (!isKeyValue(value)) return undefined;
    key[name] = value;
  }
  return Object.keys(key).length === 0 ? { shard } : { shard, lastKey: key };
};

export type CloseClaim =
  | { readonly kind: "claimed" }
  /** The row no longer matches what was selected (or another closer holds it); `row` is its current state. */
  | { readonly kind: "changed"; readonly row: RegistryRow | undefined };

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
    const advanced = await conditionalUpdate(client, {
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
    });
    if (!advanced) return;
    // Put the row into the closable index unless it is already closed; a separate conditional update
    // keeps the state guard simple.
    await conditionalUpdate(client, {
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
    return conditionalUpdate(client, {
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
    });
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
  /** `stale` with the cursor as an opaque token (see `encodeStaleCursor`); undefined token = first page. */
  async stalePage(
    olderThan: number,
    token: string | undefined,
    limit: number,
  ): Promise<{ rows: readonly RegistryRow[]; next: string | undefined }> {
    const cursor = token === undefined ? { shard: 0 } : decodeStaleCursor(token);
    if (cursor === undefined) throw new RangeError("not a stale-conversation cursor issued by this registry");
    const page = await this.stale(olderThan, cursor, limit);
    return { rows: page.rows, next: page.next === undefined ? undefined : encodeStaleCursor(page.next) };
  },

  isCursor(token: string): boolean {
    return decodeStaleCursor(token) !== undefined;
  },

  /**
   * The closer's re-check in our own store, taken just before it closes a conversation: succeeds only if
   * the row is still closable, `lastActivityAt` is exactly what the closer selected (no activity since),
   * and no other closer run holds an unexpired claim. The claim (`closingUntil`) keeps an overlapping
   * on-demand run from posting a second closing notice; it simply expires if this run dies mid-close.
   */
  async claimForClose(input: {
    conversationSid: string;
    seenLastActivityAt: number;
    now: number;
    leaseMs: number;
  }): Promise<CloseClaim> {
    const claimed = await conditionalUpdate(client, {
      TableName: tableName,
      Key: registryKey(input.conversationSid),
      UpdateExpression: "SET closingUntil = :until",
      ConditionExpression:
        "lastActivityAt = :seen AND #state IN (:active, :inactive) AND " +
        "(attribute_not_exists(closingUntil) OR closingUntil < :now)",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: {
        ":until": { N: String(input.now + input.leaseMs) },
        ":seen": { N: String(input.seenLastActivityAt) },
        ":now": { N: String(input.now) },
        ":active": { S: "active" },
        ":inactive": { S: "inactive" },
      },
    });
    return claimed ? { kind: "claimed" } : { kind: "changed", row: await this.get(input.conversationSid) };
  },

  /**
   * Writes rows as given, in batches of 25: seeds the registry for tests, benchmarks and local demos.
   * Closable rows go into the activity index exactly as `touch`/`setState` would put them there.
   */
  async seed(
    rows: readonly (Omit<RegistryRow, "closeOutcome"> & { closeOutcome?: string })[],
  ): Promise<void> {
    for (let start = 0; start < rows.length; start += 25) {
      const requests = rows.slice(start, start + 25).map((row) => ({
        PutRequest: {
          Item: {
            ...registryKey(row.conversationSid),
            conversationSid: { S: row.conversationSid },
            tenantId: { S: row.tenantId },
            state: { S: row.state },
            lastActivityAt: { N: String(row.lastActivityAt) },
            stateAt: { N: String(row.stateAt) },
            ...(isClosable(row.state) ? { activityShard: { S: activityShardOf(row.conversationSid) } } : {}),
            ...(row.priority === undefined ? {} : { priority: { S: row.priority } }),
            ...(row.closeOutcome === undefined ? {} : { closeOutcome: { S: row.closeOutcome } }),
          },
        },
      }));
      let unprocessed: WriteRequest[] = requests;
      while (unprocessed.length > 0) {
        const result: BatchWriteItemCommandOutput = await client.send(
          new BatchWriteItemCommand({ RequestItems: { [tableName]: unprocessed } }),
        );
        unprocessed = result.UnprocessedItems?.[tableName] ?? [];
        // Unprocessed items mean the table is throttling; give it a moment before resending them.
        if (unprocessed.length > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  },
});
