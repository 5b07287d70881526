// The one source of truth for the shapes of stateful resources: table keys, index names, TTL attributes,
// queue FIFO settings and redrive. The CDK stack, the adapters and the local stack all read this module,
// so a renamed key cannot drift between what is deployed, what the code queries and what runs locally.
// Never rename a `logicalId`: CloudFormation would replace the resource (orphaning a retained table).

export const Tables = {
  /** Webhook dedupe claims, one item per event id. Items expire (TTL) after the dedupe window. */
  dedupe: {
    logicalId: "DedupeTable",
    partitionKey: { name: "eventId", type: "S" },
    ttlAttribute: "expiresAt",
    pointInTimeRecovery: false,
    retain: false,
    indexes: [],
  },
  /**
   * Consent: the current suppression state per (tenant, channel, address, scope) and the append-only
   * consent records kept as evidence. Both item types share the table (`pk`/`sk`).
   */
  consent: {
    logicalId: "ConsentTable",
    partitionKey: { name: "pk", type: "S" },
    sortKey: { name: "sk", type: "S" },
    ttlAttribute: "expiresAt",
    pointInTimeRecovery: true,
    retain: true,
    indexes: [],
  },
  /**
   * Conversations: the customer-address → conversation mapping, mirrored-message markers and the
   * conversation registry the stale closer reads through the sparse `byActivity` index.
   */
  conversations: {
    logicalId: "ConversationsTable",
    partitionKey: { name: "pk", type: "S" },
    sortKey: { name: "sk", type: "S" },
    ttlAttribute: "expiresAt",
    pointInTimeRecovery: true,
    retain: true,
    indexes: [
      {
        name: "byActivity",
        partitionKey: { name: "activityShard", type: "S" },
        sortKey: { name: "lastActivityAt", type: "N" },
      },
    ],
  },
} as const;

export type TableName = keyof typeof Tables;
export type TableDefinition = (typeof Tables)[TableName];
/** Every table, in `Tables` order. */
export const tableNames: readonly TableName[] = Object.keys(Tables).filter(
  (name): name is TableName => name in Tables,
);

/**
 * Work queues. All are FIFO: the webhook sets MessageGroupId per customer address or conversation so
 * consumers see each customer's events in order, and MessageDeduplicationId = event id so a re-sent
 * hand-off inside SQS's five-minute window is dropped by SQS itself.
 */
export const Queues = {
  /** Consent gate: every inbound message and every 21610 failure. Forwards what the mirror needs. */
  consent: {
    logicalId: "ConsentQueue",
    fifo: true,
    maxReceiveCount: 5,
    consumer: "compliance",
  },
  /** Mirror: gated inbound messages, status callbacks and Conversations post-events (registry). */
  mirror: {
    logicalId: "MirrorQueue",
    fifo: true,
    maxReceiveCount: 5,
    consumer: "mirror",
  },
} as const;

export type QueueName = keyof typeof Queues;
/** Every work queue, in `Queues` order. */
export const queueNames: readonly QueueName[] = Object.keys(Queues).filter(
  (name): name is QueueName => name in Queues,
);

/** SQS requires the `.fifo` suffix on FIFO queue names; CDK generates the rest of the physical name. */
export const queueNameSuffix = (queue: QueueName): string => (Queues[queue].fifo ? ".fifo" : "");

/**
 * Deployable functions: entry, timeout and memory, how each is triggered, and the tables and queues it
 * may touch. The build, the CDK stack (env wiring + least-privilege grants in one helper) and the local
 * stack (the same env) read the same entries. Every function also gets the Twilio secret.
 */
export const Functions = {
  webhook: {
    entry: "functions/webhook/handler.ts",
    timeoutSeconds: 10,
    memoryMb: 1024,
    trigger: { kind: "http" },
    // consent: read-only, to answer the onParticipantAdd pre-event from the suppression store.
    tables: { dedupe: "readwrite", consent: "read" },
    sendsTo: ["consent", "mirror"],
  },
  compliance: {
    entry: "functions/compliance/handler.ts",
    timeoutSeconds: 30,
    memoryMb: 512,
    trigger: { kind: "queue", queue: "consent", batchSize: 10, batchWindowSeconds: 0, maxConcurrency: 5 },
    tables: { consent: "readwrite" },
    sendsTo: ["mirror"],
  },
  mirror: {
    entry: "functions/mirror/handler.ts",
    timeoutSeconds: 30,
    memoryMb: 512,
    trigger: { kind: "queue", queue: "mirror", batchSize: 10, batchWindowSeconds: 0, maxConcurrency: 5 },
    tables: { conversations: "readwrite" },
    sendsTo: [],
  },
  closer: {
    entry: "functions/closer/handler.ts",
    // 14 minutes: at 25 mutations/s one run can post 10,000 closing notices and closes (2 mutations each)
    // and still end before the next 15-minute tick.
    timeoutSeconds: 840,
    memoryMb: 512,
    trigger: { kind: "schedule", rateMinutes: 15 },
    tables: { conversations: "readwrite" },
    sendsTo: [],
  },
} as const;

export type FunctionName = keyof typeof Functions;
export const functionNames = Object.keys(Functions) as FunctionName[];

/** SQS visibility must cover six consumer timeouts (AWS guidance) plus the batching window. */
export const visibilityTimeoutSeconds = (queue: QueueName): number => {
  const consumer = Functions[Queues[queue].consumer];
  return 6 * consumer.timeoutSeconds + consumer.trigger.batchWindowSeconds;
};

/** Webhook routes served by the HTTP API, path → route kind. */
export const WebhookRoutes = {
  "/twilio/conversations": "conversations",
  "/twilio/messaging/inbound": "messaging-inbound",
  "/twilio/messaging/status": "messaging-status",
} as const;

export type WebhookRoutePath = keyof typeof WebhookRoutes;
export type WebhookRouteKind = (typeof WebhookRoutes)[WebhookRoutePath];
