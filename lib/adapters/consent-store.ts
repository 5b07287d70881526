// ConsentStore on the DynamoDB `consent` table (lib/resources.ts). Two item types share the table:
//
//   suppression state   pk = SUPP#<tenant>#<channel>#<address>     sk = SCOPE#<scope>
//                       scope = "*" (all our senders), a Messaging Service SID (MG…) or our number
//                       attributes: status (opted-out|opted-in), version, eventAt, eventId, keyword,
//                       source, previousStatus, updatedAt, tenant, channel, address, scope. No TTL:
//                       an opt-out never expires.
//   consent record      pk = CONSENT#<tenant>#<channel>#<address>  sk = <eventAt ISO-8601>#<eventId>
//                       attributes: action (opt-out|opt-in|inbound-while-suppressed), tenant, channel,
//                       address, eventId, eventAt, recordedAt, source, keyword, decidedBy, scope,
//                       senderNumber, messagingServiceSid, messageSid, conversationSid, effects (string
//                       set of completed side effects), expiresAt (TTL, epoch s; absent = forever).
//
// All of one person's scopes sit in one partition, so "may sender X reach this person?" is one Query
// (the webhook's pre-event check and the compliance use case both use it). Records are keyed by event
// time, so reading a partition in sk order is the person's consent history. Low-level client only: this
// module is also bundled into the webhook.
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { ConsentStore } from "../app/compliance.ts";
import {
  type ConsentChange,
  type ConsentDecision,
  type ConsentRecord,
  type ConsentSource,
  type ConsentSubject,
  consentVersion,
  type SuppressionState,
  type SuppressionStatus,
} from "../domain/consent.ts";
import { Tables } from "../resources.ts";

const pkName = Tables.consent.partitionKey.name;
const skName = Tables.consent.sortKey.name;
const ttlName = Tables.consent.ttlAttribute;

export const statePartition = (subject: ConsentSubject): string =>
  `SUPP#${subject.tenant}#${subject.channel}#${subject.address}`;
export const stateSortKey = (scope: string): string => `SCOPE#${scope}`;
export const recordPartition = (subject: ConsentSubject): string =>
  `CONSENT#${subject.tenant}#${subject.channel}#${subject.address}`;
export const recordSortKey = (record: Pick<ConsentRecord, "eventAt" | "eventId">): string =>
  `${new Date(record.eventAt).toISOString()}#${record.eventId}`;

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });

const isStatus = (value: string | undefined): value is SuppressionStatus =>
  value === "opted-out" || value === "opted-in";

const sources: readonly ConsentSource[] = [
  "messaging-inbound",
  "conversations-message",
  "status-callback-21610",
  "conversations-delivery-21610",
];
const isSource = (value: string | undefined): value is ConsentSource =>
  value !== undefined && (sources as readonly string[]).includes(value);

/** Items written by this module only; anything unreadable is skipped rather than trusted. */
export const toState = (item: Record<string, AttributeValue> | undefined): SuppressionState | undefined => {
  if (item === undefined) return undefined;
  const status = item.status?.S;
  const previous = item.previousStatus?.S;
  const source = item.source?.S;
  const scope = item.scope?.S;
  const version = item.version?.S;
  const eventId = item.eventId?.S;
  const eventAt = Number(item.eventAt?.N);
  if (!isStatus(status) || !isSource(source) || scope === undefined || version === undefined)
    return undefined;
  if (eventId === undefined || !Number.isFinite(eventAt)) return undefined;
  return {
    scope,
    status,
    version,
    eventAt,
    eventId,
    keyword: item.keyword?.S,
    source,
    previousStatus: isStatus(previous) ? previous : "none",
  };
};

export type ConsentStoreOptions = {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly now?: () => number;
};

export type ConsentStateReader = {
  /** One strongly consistent Query over the person's partition; `signal` bounds the wait. */
  states(
    subject: ConsentSubject,
    options?: { readonly signal?: AbortSignal },
  ): Promise<readonly SuppressionState[]>;
};

export const consentStateReader = ({ client, tableName }: ConsentStoreOptions): ConsentStateReader => ({
  async states(subject, options = {}) {
    const states: SuppressionState[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: "#pk = :pk",
          ExpressionAttributeNames: { "#pk": pkName },
          ExpressionAttributeValues: { ":pk": s(statePartition(subject)) },
          // Strong consistency: a STOP written a moment ago must block the very next participant add.
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
        options.signal === undefined ? {} : { abortSignal: options.signal },
      );
      for (const item of page.Items ?? []) {
        const state = toState(item);
        if (state !== undefined) states.push(state);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return states;
  },
});

const optional = (name: string, value: string | undefined): Record<string, AttributeValue> =>
  value === undefined ? {} : { [name]: s(value) };

export const dynamoConsentStore = (options: ConsentStoreOptions): ConsentStore => {
  const { client, tableName } = options;
  const now = options.now ?? Date.now;
  const reader = consentStateReader(options);
  return {
    states: (subject) => reader.states(subject),

    async apply(subject, scope, change: ConsentChange): Promise<ConsentDecision> {
      const version = consentVersion(change);
      const names: Record<string, string> = {
        "#version": "version",
        "#status": "status",
        "#previousStatus": "previousStatus",
        "#eventAt": "eventAt",
        "#eventId": "eventId",
        "#source": "source",
        "#keyword": "keyword",
        "#updatedAt": "updatedAt",
        "#tenant": "tenant",
        "#channel": "channel",
        "#address": "address",
        "#scope": "scope",
      };
      const values: Record<string, AttributeValue> = {
        ":version": s(version),
        ":status": s(change.action === "opt-out" ? "opted-out" : "opted-in"),
        ":none": s("none"),
        ":eventAt": n(change.eventAt),
        ":eventId": s(change.eventId),
        ":source": s(change.source),
        ":updatedAt": n(now()),
        ":tenant": s(subject.tenant),
        ":channel": s(subject.channel),
        ":address": s(subject.address),
        ":scope": s(scope),
        ...(change.keyword === undefined ? {} : { ":keyword": s(change.keyword) }),
      };
      // Every operand on the right of SET reads the item as it was before this update, so
      // previousStatus captures the status this event replaced, atomically with the change itself.
      const set = [
        "#previousStatus = if_not_exists(#status, :none)",
        "#status = :status",
        "#version = :version",
        "#eventAt = :eventAt",
        "#eventId = :eventId",
        "#source = :source",
        "#updatedAt = :updatedAt",
        "#tenant = :tenant",
        "#channel = :channel",
        "#address = :address",
        "#scope = :scope",
        ...(change.keyword === undefined ? [] : ["#keyword = :keyword"]),
      ];
      try {
        const result = await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { [pkName]: s(statePartition(subject)), [skName]: s(stateSortKey(scope)) },
            UpdateExpression: `SET ${set.join(", ")}${change.keyword === undefined ? " REMOVE #keyword" : ""}`,
            // Monotonic in event time: only a strictly newer version (event time, then opt-out over
            // opt-in, then event id; see consentVersion) may replace the state. Out-of-order and
            // replayed events fail this condition and change nothing.
            ConditionExpression: "attribute_not_exists(#version) OR #version < :version",
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: "ALL_NEW",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        const state = toState(result.Attributes);
        if (state === undefined) throw new Error("consent state update returned an unreadable item");
        return { outcome: "applied", state, statusChanged: state.previousStatus !== state.status };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const current = toState(error.Item);
        if (current === undefined)
          throw new Error("consent state condition failed on an unreadable item", { cause: error });
        if (current.eventId === change.eventId) {
          return {
            outcome: "replayed",
            state: current,
            statusChanged: current.previousStatus !== current.status,
          };
        }
        return { outcome: "superseded", state: current, statusChanged: false };
      }
    },

    async record(record) {
      const item: Record<string, AttributeValue> = {
        [pkName]: s(recordPartition(record.subject)),
        [skName]: s(recordSortKey(record)),
        action: s(record.action),
        tenant: s(record.subject.tenant),
        channel: s(record.subject.channel),
        address: s(record.subject.address),
        eventId: s(record.eventId),
        eventAt: n(record.eventAt),
        recordedAt: n(record.recordedAt),
        source: s(record.source),
        scope: s(record.scope),
        ...optional("keyword", record.keyword),
        ...optional("decidedBy", record.decidedBy),
        ...optional("senderNumber", record.sender.proxy),
        ...optional("messagingServiceSid", record.sender.messagingServiceSid),
        ...optional("messageSid", record.messageSid),
        ...optional("conversationSid", record.conversationSid),
        ...(record.expiresAt === undefined ? {} : { [ttlName]: n(record.expiresAt) }),
      };
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: item,
            // Write-once evidence: a replayed event keeps the first record (and its recordedAt).
            ConditionExpression: "attribute_not_exists(#pk)",
            ExpressionAttributeNames: { "#pk": pkName },
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        return { effectsDone: new Set<string>() };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        return { effectsDone: new Set(error.Item?.effects?.SS ?? []) };
      }
    },

    async markDone(record, effect) {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { [pkName]: s(recordPartition(record.subject)), [skName]: s(recordSortKey(record)) },
          // The consent facts stay write-once; only the set of completed effects grows.
          UpdateExpression: "ADD #effects :effect",
          ConditionExpression: "attribute_exists(#pk)",
          ExpressionAttributeNames: { "#effects": "effects", "#pk": pkName },
          ExpressionAttributeValues: { ":effect": { SS: [effect] } },
        }),
      );
    },
  };
};
