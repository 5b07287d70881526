// DynamoDB tables as `Tables` declares them: keys, on-demand billing, TTL, PITR, GSIs, retention of
// stateful tables, and no hard-coded physical names.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type TableName, Tables, tableNames } from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import { resourceProperties } from "./template-queries.ts";

const { stateful } = synthesizeBackbone();
const tableOf = (name: TableName) => resourceProperties(stateful, Tables[name].logicalId);
const resourceOf = (name: TableName): Record<string, unknown> =>
  stateful.toJSON().Resources[Tables[name].logicalId];

describe("tables", () => {
  for (const name of tableNames) {
    const definition = Tables[name];

    test(`${name} has the key schema of its Tables entry`, () => {
      const keys: Array<{ AttributeName: string; KeyType: string }> = [
        { AttributeName: definition.partitionKey.name, KeyType: "HASH" },
      ];
      if ("sortKey" in definition) keys.push({ AttributeName: definition.sortKey.name, KeyType: "RANGE" });
      assert.deepEqual(tableOf(name).KeySchema, keys);
    });

    test(`${name} is billed on demand`, () => {
      assert.equal(tableOf(name).BillingMode, "PAY_PER_REQUEST");
    });

    test(`${name} expires items through TTL on ${definition.ttlAttribute}`, () => {
      assert.deepEqual(tableOf(name).TimeToLiveSpecification, {
        AttributeName: definition.ttlAttribute,
        Enabled: true,
      });
    });

    test(`${name} point-in-time recovery is ${definition.pointInTimeRecovery ? "on" : "off"}`, () => {
      assert.deepEqual(tableOf(name).PointInTimeRecoverySpecification, {
        PointInTimeRecoveryEnabled: definition.pointInTimeRecovery,
      });
    });

    test(`${name} is ${definition.retain ? "retained and deletion-protected" : "deleted"} with the stack`, () => {
      const expected = definition.retain ? "Retain" : "Delete";
      assert.equal(resourceOf(name).DeletionPolicy, expected);
      assert.equal(resourceOf(name).UpdateReplacePolicy, expected);
      assert.equal(tableOf(name).DeletionProtectionEnabled, definition.retain);
    });

    test(`${name} has its declared global secondary indexes`, () => {
      const indexes = definition.indexes.map((index) => ({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey.name, KeyType: "HASH" },
          { AttributeName: index.sortKey.name, KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      }));
      assert.deepEqual(tableOf(name).GlobalSecondaryIndexes, indexes.length > 0 ? indexes : undefined);
    });

    test(`${name} has a CloudFormation-generated physical name`, () => {
      assert.equal(tableOf(name).TableName, undefined);
    });
  }

  test("the conversations table has the sparse byActivity index the closer queries", () => {
    const indexes = tableOf("conversations").GlobalSecondaryIndexes;
    assert.ok(Array.isArray(indexes));
    assert.ok(indexes.some((index: { IndexName?: string }) => index.IndexName === "byActivity"));
  });
});
