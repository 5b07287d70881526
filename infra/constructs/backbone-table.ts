// A DynamoDB table built from its `Tables` entry: keys, TTL, GSIs, PITR and retention all come from
// lib/resources.ts, so the adapters and the deployed table agree on every attribute name.
import { CfnResource, RemovalPolicy, Validations } from "aws-cdk-lib";
import { AttributeType, BillingMode, Table } from "aws-cdk-lib/aws-dynamodb";
import type { Construct } from "constructs";
import { type TableName, Tables } from "../../lib/resources.ts";

type KeyType = "S" | "N" | "B";

interface KeyShape {
  readonly name: string;
  readonly type: KeyType;
}

interface TableShape {
  readonly logicalId: string;
  readonly partitionKey: KeyShape;
  readonly sortKey?: KeyShape;
  readonly ttlAttribute: string;
  readonly pointInTimeRecovery: boolean;
  readonly retain: boolean;
  readonly indexes: ReadonlyArray<{ name: string; partitionKey: KeyShape; sortKey?: KeyShape }>;
}

const attributeTypes: Record<KeyType, AttributeType> = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
};

const attribute = (key: KeyShape) => ({ name: key.name, type: attributeTypes[key.type] });

// A table without PITR needs a written reason here; without one cdk-nag's DDB3 finding fails the synth.
const withoutPointInTimeRecovery: Partial<Record<TableName, string>> = {
  dedupe:
    "Dedupe claims live only for the dedupe window and expire via TTL; restoring them would resurrect stale claims, so a backup has no value.",
};

/** Creates the table for `name` directly in `scope`, with the logical ID pinned to `Tables[name].logicalId`. */
export const backboneTable = (scope: Construct, name: TableName): Table => {
  const shape: TableShape = Tables[name];
  const table = new Table(scope, shape.logicalId, {
    partitionKey: attribute(shape.partitionKey),
    sortKey: shape.sortKey && attribute(shape.sortKey),
    billingMode: BillingMode.PAY_PER_REQUEST,
    timeToLiveAttribute: shape.ttlAttribute,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: shape.pointInTimeRecovery },
    deletionProtection: shape.retain,
    removalPolicy: shape.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  });
  for (const index of shape.indexes) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: attribute(index.partitionKey),
      sortKey: index.sortKey && attribute(index.sortKey),
    });
  }
  // Pinned so that refactoring the construct tree can never make CloudFormation replace a retained table.
  if (table.node.defaultChild instanceof CfnResource)
    table.node.defaultChild.overrideLogicalId(shape.logicalId);
  const noBackupReason = withoutPointInTimeRecovery[name];
  if (!shape.pointInTimeRecovery && noBackupReason) {
    Validations.of(table).acknowledge({ id: "AwsSolutions-DDB3", reason: noBackupReason });
  }
  return table;
};
