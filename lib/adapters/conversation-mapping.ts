// The mirror's items in the conversations table, next to the registry rows (`CONV#<CH>` / `REGISTRY`,
// lib/adapters/conversation-registry.ts). Layout (pk / sk → attributes):
//
//   MAP#<tenant>#<channel>#<address> / THREAD      the customer's current thread
//       conversationSid, uniqueName?, generation, origin (created|adopted), bound, boundAt,
//       proxyAddress?, updatedAt                          no TTL: the mapping lives as long as the customer
//   MIRRORED#<SM/MM sid> / MESSAGE                 the ledger of one Programmable Messaging message
//       mirrorState (pending|posted|captured|native|summarized), conversationSid, messageSid (IM…),
//       tenantId, template?, sendId?, statusName/statusRank, appliedStatus/appliedRank, errorCode?,
//       createdAt, updatedAt, expiresAt (TTL, 90 days after the last write)
//   MIRRORED#<IM sid> / MESSAGE                    the same, for a message sendOutbound posted into a thread
//       (sendId set, messageSid = the key)
//   CLAIM#<IM sid> / CLAIM                         a thread message Twilio created itself, claimed by the
//       messagingMessageSid it stands for                  Messaging SID it stands for; TTL 30 days
//
// Every write that can race is conditional; the comment at each condition says which race it settles.
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type {
  LedgerEntry,
  MirrorLedger,
  MirrorState,
  ThreadMapping,
  ThreadMappings,
} from "../app/mirror/ports.ts";
import { type CustomerKey, isOutboundStatus, type OutboundStatus, statusRank } from "../domain/mirror.ts";
import { Tables } from "../resources.ts";

const pkName = Tables.conversations.partitionKey.name;
const skName = Tables.conversations.sortKey.name;
const ttlName = Tables.conversations.ttlAttribute;

export const LedgerTtlSeconds = 90 * 24 * 3600;
export const ClaimTtlSeconds = 30 * 24 * 3600;

const key = (pk: string, sk: string): Record<string, AttributeValue> => ({
  [pkName]: { S: pk },
  [skName]: { S: sk },
});

export const mappingKey = (customer: CustomerKey) =>
  key(`MAP#${customer.tenantId}#${customer.channel}#${customer.address}`, "THREAD");
export const ledgerKey = (messagingMessageSid: string) => key(`MIRRORED#${messagingMessageSid}`, "MESSAGE");
export const claimKey = (messageSid: string) => key(`CLAIM#${messageSid}`, "CLAIM");

const isConditionFailure = (error: unknown): boolean => error instanceof ConditionalCheckFailedException;

const optional = (name: string, value: string | undefined): Record<string, AttributeValue> =>
  value === undefined ? {} : { [name]: { S: value } };

const expiry = (at: number, ttlSeconds: number): AttributeValue => ({
  N: String(Math.floor(at / 1000) + ttlSeconds),
});

// ---- Mapping ----------------------------------------------------------------------------------------

const toMapping = (item: Record<string, AttributeValue>): ThreadMapping => ({
  conversationSid: item.conversationSid?.S ?? "",
  uniqueName: item.uniqueName?.S,
  generation: Number(item.generation?.N ?? 0),
  origin: item.origin?.S === "adopted" ? "adopted" : "created",
  bound: item.bound?.BOOL ?? false,
  boundAt: Number(item.boundAt?.N ?? 0),
  proxyAddress: item.proxyAddress?.S,
});

export const dynamoThreadMappings = (
  client: DynamoDBClient,
  tableName: string,
  now: () => number = Date.now,
): ThreadMappings => {
  const get = async (customer: CustomerKey): Promise<ThreadMapping | undefined> => {
    const result = await client.send(
      new GetItemCommand({ TableName: tableName, Key: mappingKey(customer), ConsistentRead: true }),
    );
    return result.Item === undefined ? undefined : toMapping(result.Item);
  };

  const put: ThreadMappings["put"] = async (customer, next, expected) => {
    const item: Record<string, AttributeValue> = {
      ...mappingKey(customer),
      conversationSid: { S: next.conversationSid },
      ...optional("uniqueName", next.uniqueName),
      generation: { N: String(next.generation) },
      origin: { S: next.origin },
      bound: { BOOL: next.bound },
      boundAt: { N: String(next.boundAt) },
      ...optional("proxyAddress", next.proxyAddress),
      updatedAt: { N: String(now()) },
    };
    try {
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: item,
          // Compare-and-set on the thread it replaces: of two workers that both saw the same old (or no)
          // mapping, exactly one writes; the other reads and uses the winner's thread.
          ...(expected === undefined
            ? { ConditionExpression: `attribute_not_exists(${pkName})` }
            : {
                ConditionExpression: "conversationSid = :expected",
                ExpressionAttributeValues: { ":expected": { S: expected } },
              }),
        }),
      );
      return next;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const winner = await get(customer);
    if (winner !== undefined) return winner;
    // The expected mapping vanished (deleted by hand): start over as a first mapping.
    return put(customer, next, undefined);
  };

  return {
    get,
    put,

    async markBound(customer, conversationSid, binding) {
      await client
        .send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: mappingKey(customer),
            UpdateExpression: "SET bound = :true, boundAt = :at, proxyAddress = :proxy, updatedAt = :now",
            // Only the thread we bound in: a replacement written meanwhile keeps its own binding state.
            ConditionExpression: "conversationSid = :sid",
            ExpressionAttributeValues: {
              ":true": { BOOL: true },
              ":at": { N: String(binding.at) },
              ":proxy": { S: binding.proxyAddress },
              ":now": { N: String(now()) },
              ":sid": { S: conversationSid },
            },
          }),
        )
        .catch((error: unknown) => {
          if (!isConditionFailure(error)) throw error;
        });
    },
  };
};

// ---- Ledger -----------------------------------------------------------------------------------------

const mirrorStates: readonly MirrorState[] = ["pending", "posted", "captured", "native", "summarized"];

const statusOf = (value: string | undefined): OutboundStatus | undefined =>
  value !== undefined && isOutboundStatus(value) ? value : undefined;

const toEntry = (messagingMessageSid: string, item: Record<string, AttributeValue>): LedgerEntry => ({
  messagingMessageSid,
  state: mirrorStates.find((state) => state === item.mirrorState?.S),
  conversationSid: item.conversationSid?.S,
  messageSid: item.messageSid?.S,
  template: item.template?.S,
  status: statusOf(item.statusName?.S),
  errorCode: item.errorCode?.S,
  appliedStatus: statusOf(item.appliedStatus?.S),
  sendId: item.sendId?.S,
});

export const dynamoMirrorLedger = (
  client: DynamoDBClient,
  tableName: string,
  options: { readonly ledgerTtlSeconds?: number; readonly claimTtlSeconds?: number } = {},
): MirrorLedger => {
  const ledgerTtl = options.ledgerTtlSeconds ?? LedgerTtlSeconds;
  const claimTtl = options.claimTtlSeconds ?? ClaimTtlSeconds;

  const get = async (messagingMessageSid: string): Promise<LedgerEntry | undefined> => {
    const result = await client.send(
      new GetItemCommand({ TableName: tableName, Key: ledgerKey(messagingMessageSid), ConsistentRead: true }),
    );
    return result.Item === undefined ? undefined : toEntry(messagingMessageSid, result.Item);
  };

  /** Runs a conditional update; false when the condition did not hold. */
  const conditional = async (command: UpdateItemCommand | PutItemCommand): Promise<boolean> => {
    try {
      // Two calls because `send`'s overloads take one command type at a time, not a union.
      await (command instanceof PutItemCommand ? client.send(command) : client.send(command));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  };

  return {
    get,

    begin(messagingMessageSid, intent) {
      return conditional(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ledgerKey(messagingMessageSid),
          UpdateExpression:
            "SET mirrorState = :pending, conversationSid = :sid, tenantId = if_not_exists(tenantId, :tenant), " +
            "createdAt = if_not_exists(createdAt, :at), updatedAt = :at, #ttl = :ttl",
          // A settled message (posted, captured, native) is never re-opened by a redelivery.
          ConditionExpression: "attribute_not_exists(mirrorState) OR mirrorState = :pending",
          ExpressionAttributeNames: { "#ttl": ttlName },
          ExpressionAttributeValues: {
            ":pending": { S: "pending" },
            ":sid": { S: intent.conversationSid },
            ":tenant": { S: intent.tenantId },
            ":at": { N: String(intent.at) },
            ":ttl": expiry(intent.at, ledgerTtl),
          },
        }),
      );
    },

    async complete(messagingMessageSid, posted) {
      const status = posted.status;
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ledgerKey(messagingMessageSid),
          UpdateExpression:
            "SET mirrorState = :posted, conversationSid = :sid, messageSid = :message, " +
            "createdAt = if_not_exists(createdAt, :at), updatedAt = :at, #ttl = :ttl" +
            (status === undefined
              ? ""
              : ", statusName = :status, statusRank = :rank, appliedStatus = :status, appliedRank = :rank" +
                (status.errorCode === undefined ? " REMOVE errorCode" : ", errorCode = :error")),
          ExpressionAttributeNames: { "#ttl": ttlName },
          ExpressionAttributeValues: {
            ":posted": { S: "posted" },
            ":sid": { S: posted.conversationSid },
            ":message": { S: posted.messageSid },
            ":at": { N: String(posted.at) },
            ":ttl": expiry(posted.at, ledgerTtl),
            ...(status === undefined
              ? {}
              : {
                  ":status": { S: status.status },
                  ":rank": { N: String(statusRank(status.status)) },
                  ...(status.errorCode === undefined ? {} : { ":error": { S: status.errorCode } }),
                }),
          },
        }),
      );
    },

    settle(messagingMessageSid, settled) {
      return conditional(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ledgerKey(messagingMessageSid),
          UpdateExpression:
            "SET mirrorState = :state, createdAt = if_not_exists(createdAt, :at), updatedAt = :at, #ttl = :ttl" +
            (settled.conversationSid === undefined ? "" : ", conversationSid = :sid") +
            (settled.messageSid === undefined ? "" : ", messageSid = :message"),
          // Never overwrite our own posted copy (if we mirrored it, it stays ours), nor another settlement.
          ConditionExpression: "attribute_not_exists(mirrorState) OR mirrorState = :pending",
          ExpressionAttributeNames: { "#ttl": ttlName },
          ExpressionAttributeValues: {
            ":state": { S: settled.state },
            ":pending": { S: "pending" },
            ":at": { N: String(settled.at) },
            ":ttl": expiry(settled.at, ledgerTtl),
            ...(settled.conversationSid === undefined ? {} : { ":sid": { S: settled.conversationSid } }),
            ...(settled.messageSid === undefined ? {} : { ":message": { S: settled.messageSid } }),
          },
        }),
      );
    },

    claimMessage(messageSid, messagingMessageSid, at) {
      return conditional(
        new PutItemCommand({
          TableName: tableName,
          Item: {
            ...claimKey(messageSid),
            messagingMessageSid: { S: messagingMessageSid },
            [ttlName]: expiry(at, claimTtl),
          },
          // Two Messaging messages with the same text must not both match one captured thread message;
          // a retry of the same Messaging SID finds its own claim and keeps it.
          ConditionExpression: `attribute_not_exists(${pkName}) OR messagingMessageSid = :sm`,
          ExpressionAttributeValues: { ":sm": { S: messagingMessageSid } },
        }),
      );
    },

    async advanceStatus(messagingMessageSid, update) {
      await conditional(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ledgerKey(messagingMessageSid),
          UpdateExpression:
            "SET statusName = :status, statusRank = :rank, updatedAt = :at, #ttl = :ttl" +
            (update.errorCode === undefined ? " REMOVE errorCode" : ", errorCode = :error"),
          // Monotonic: callbacks arrive out of order; only a higher-ranked status replaces the recorded
          // one, atomically, so "delivered" then a late "sent" ends in "delivered".
          ConditionExpression:
            "attribute_exists(mirrorState) AND (attribute_not_exists(statusRank) OR statusRank < :rank)",
          ExpressionAttributeNames: { "#ttl": ttlName },
          ExpressionAttributeValues: {
            ":status": { S: update.status },
            ":rank": { N: String(statusRank(update.status)) },
            ":at": { N: String(update.at) },
            ":ttl": expiry(update.at, ledgerTtl),
            ...(update.errorCode === undefined ? {} : { ":error": { S: update.errorCode } }),
          },
        }),
      );
      return get(messagingMessageSid);
    },

    async markApplied(messagingMessageSid, status, at) {
      await conditional(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ledgerKey(messagingMessageSid),
          UpdateExpression: "SET appliedStatus = :status, appliedRank = :rank, updatedAt = :at",
          ConditionExpression: "attribute_not_exists(appliedRank) OR appliedRank < :rank",
          ExpressionAttributeValues: {
            ":status": { S: status },
            ":rank": { N: String(statusRank(status)) },
            ":at": { N: String(at) },
          },
        }),
      );
    },

    async recordSend(messagingMessageSid, send) {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ledgerKey(messagingMessageSid),
          UpdateExpression:
            "SET tenantId = if_not_exists(tenantId, :tenant), createdAt = if_not_exists(createdAt, :at), " +
            "updatedAt = :at, #ttl = :ttl" +
            (send.template === undefined ? "" : ", template = :template") +
            (send.sendId === undefined ? "" : ", sendId = :send"),
          ExpressionAttributeNames: { "#ttl": ttlName },
          ExpressionAttributeValues: {
            ":tenant": { S: send.tenantId },
            ":at": { N: String(send.at) },
            ":ttl": expiry(send.at, ledgerTtl),
            ...(send.template === undefined ? {} : { ":template": { S: send.template } }),
            ...(send.sendId === undefined ? {} : { ":send": { S: send.sendId } }),
          },
        }),
      );
    },
  };
};
