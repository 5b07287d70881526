// Creates the tables and queues of `lib/resources.ts` on the local emulators, with the same keys, TTL
// attributes, indexes, FIFO settings, visibility timeouts and DLQ redrive as the CDK stack.
import {
  type AttributeDefinition,
  CreateTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type QueueName,
  Queues,
  queueNameSuffix,
  queueNames,
  type TableDefinition,
  type TableName,
  Tables,
  visibilityTimeoutSeconds,
} from "../resources.ts";

export type ProvisionedResources = {
  readonly tableNames: Readonly<Record<TableName, string>>;
  readonly queueUrls: Readonly<Record<QueueName, string>>;
  readonly deadLetterQueueUrls: Readonly<Record<QueueName, string>>;
  readonly queueArns: Readonly<Record<QueueName, string>>;
};

type Key = { readonly name: string; readonly type: "S" | "N" };

const keySchema = (partition: Key, sort?: Key): KeySchemaElement[] => [
  { AttributeName: partition.name, KeyType: "HASH" },
  ...(sort ? [{ AttributeName: sort.name, KeyType: "RANGE" as const }] : []),
];

const tableInput = (definition: TableDefinition, tableName: string) => {
  const sortKey = "sortKey" in definition ? definition.sortKey : undefined;
  const attributes = new Map<string, Key>();
  for (const key of [definition.partitionKey, sortKey]) if (key) attributes.set(key.name, key);
  const indexes: GlobalSecondaryIndex[] = definition.indexes.map((index) => {
    attributes.set(index.partitionKey.name, index.partitionKey);
    attributes.set(index.sortKey.name, index.sortKey);
    return {
      IndexName: index.name,
      KeySchema: keySchema(index.partitionKey, index.sortKey),
      Projection: { ProjectionType: "ALL" },
    };
  });
  const attributeDefinitions: AttributeDefinition[] = [...attributes.values()].map((key) => ({
    AttributeName: key.name,
    AttributeType: key.type,
  }));
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST" as const,
    KeySchema: keySchema(definition.partitionKey, sortKey),
    AttributeDefinitions: attributeDefinitions,
    ...(indexes.length > 0 ? { GlobalSecondaryIndexes: indexes } : {}),
  };
};

export const provisionTables = async (
  client: DynamoDBClient,
  prefix: string,
): Promise<Record<TableName, string>> => {
  const names = {} as Record<TableName, string>;
  for (const [table, definition] of Object.entries(Tables) as [TableName, TableDefinition][]) {
    const tableName = `${prefix}-${table}`;
    await client.send(new CreateTableCommand(tableInput(definition, tableName)));
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: definition.ttlAttribute, Enabled: true },
      }),
    );
    names[table] = tableName;
  }
  return names;
};

export const provisionQueues = async (
  client: SQSClient,
  prefix: string,
  queueUrl: (name: string) => string,
) => {
  const queueUrls = {} as Record<QueueName, string>;
  const deadLetterQueueUrls = {} as Record<QueueName, string>;
  const queueArns = {} as Record<QueueName, string>;
  for (const queue of queueNames) {
    const definition = Queues[queue];
    const suffix = queueNameSuffix(queue);
    const fifo = definition.fifo ? { FifoQueue: "true" } : {};
    const dlqName = `${prefix}-${queue}-dlq${suffix}`;
    await client.send(new CreateQueueCommand({ QueueName: dlqName, Attributes: { ...fifo } }));
    const dlqArn = await queueArn(client, queueUrl(dlqName));
    const name = `${prefix}-${queue}${suffix}`;
    await client.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          ...fifo,
          VisibilityTimeout: String(visibilityTimeoutSeconds(queue)),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: definition.maxReceiveCount,
          }),
        },
      }),
    );
    queueUrls[queue] = queueUrl(name);
    deadLetterQueueUrls[queue] = queueUrl(dlqName);
    queueArns[queue] = await queueArn(client, queueUrl(name));
  }
  return { queueUrls, deadLetterQueueUrls, queueArns };
};

const queueArn = async (client: SQSClient, url: string): Promise<string> => {
  const result = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  const arn = result.Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${url} has no ARN`);
  return arn;
};

export const localClients = (endpoints: { dynamodb: string; sqs: string }, region = "us-east-1") => {
  const common = { region, credentials: { accessKeyId: "local", secretAccessKey: "local" } };
  return {
    dynamodb: new DynamoDBClient({ ...common, endpoint: endpoints.dynamodb }),
    sqs: new SQSClient({ ...common, endpoint: endpoints.sqs }),
  };
};

export const provision = async (
  endpoints: { dynamodb: string; sqs: string },
  queueUrl: (name: string) => string,
  prefix = "local",
): Promise<ProvisionedResources> => {
  const clients = localClients(endpoints);
  try {
    const tableNames = await provisionTables(clients.dynamodb, prefix);
    const queues = await provisionQueues(clients.sqs, prefix, queueUrl);
    return { tableNames, ...queues };
  } finally {
    clients.dynamodb.destroy();
    clients.sqs.destroy();
  }
};
