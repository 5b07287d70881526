// Least privilege per function: each role reaches exactly the tables, queues and secret its `Functions`
// entry names, with read or read-write actions as declared, and nothing with a wildcard.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { tableActions } from "../../infra/constructs/backbone-function.ts";
import { functionSendsTo, functionTables } from "../../lib/function-env.ts";
import {
  Functions,
  functionNames,
  type QueueName,
  Queues,
  queueNames,
  type TableName,
  Tables,
  tableNames,
} from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import {
  actionsOn,
  crossStackResolver,
  getAtt,
  logicalIdOf,
  mentions,
  ref,
  roleStatements,
  type Statement,
} from "./template-queries.ts";

const { backbone, stateful, service } = synthesizeBackbone();
const resolve = crossStackResolver(stateful);
const statementsOf = (name: keyof typeof Functions): Statement[] =>
  roleStatements(service, logicalIdOf(backbone.service.functions[name].role), resolve);

const tableArn = (table: TableName) => getAtt(Tables[table].logicalId, "Arn");
const queueArn = (queue: QueueName) => getAtt(Queues[queue].logicalId, "Arn");
const sendActions = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"];
const writeActions = [
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:BatchWriteItem",
];

describe("webhook role", () => {
  const statements = statementsOf("webhook");

  test("can claim, read and release dedupe items", () => {
    const actions = actionsOn(statements, tableArn("dedupe"));
    for (const action of [
      "dynamodb:PutItem",
      "dynamodb:GetItem",
      "dynamodb:DeleteItem",
      "dynamodb:UpdateItem",
    ]) {
      assert.ok(actions.includes(action), `webhook lacks ${action} on the dedupe table`);
    }
  });

  test("reads the consent table (pre-event suppression check) but can never write it", () => {
    const actions = actionsOn(statements, tableArn("consent"));
    assert.ok(actions.includes("dynamodb:GetItem"));
    assert.deepEqual(
      actions.filter((action) => writeActions.includes(action)),
      [],
    );
  });

  test("cannot touch the conversations table", () => {
    assert.equal(mentions(statements, Tables.conversations.logicalId), false);
  });

  test("can send to the consent and mirror queues and consume neither", () => {
    for (const queue of ["consent", "mirror"] as const) {
      assert.deepEqual(actionsOn(statements, queueArn(queue)), sendActions);
    }
  });
});

describe("every function role", () => {
  for (const name of functionNames) {
    const statements = statementsOf(name);

    test(`${name}: table actions are exactly those of its declared access, on declared tables only`, () => {
      const declared = new Map(functionTables(name).map(({ table, access }) => [table, access]));
      for (const table of tableNames) {
        const access = declared.get(table);
        if (access === undefined) {
          assert.equal(
            mentions(statements, Tables[table].logicalId),
            false,
            `${name} must not touch ${table}`,
          );
        } else {
          assert.deepEqual(actionsOn(statements, tableArn(table)), [...tableActions[access]].sort());
        }
      }
    });

    test(`${name}: index access is limited to the named indexes of its tables`, () => {
      for (const { table, access } of functionTables(name)) {
        for (const index of Tables[table].indexes) {
          const indexArn = { "Fn::Join": ["", [tableArn(table), `/index/${index.name}`]] };
          assert.deepEqual(actionsOn(statements, indexArn), [...tableActions[access]].sort());
        }
      }
    });

    test(`${name}: sends only to the queues in its sendsTo`, () => {
      const sendsTo = new Set(functionSendsTo(name));
      for (const queue of queueNames) {
        const canSend = actionsOn(statements, queueArn(queue)).includes("sqs:SendMessage");
        assert.equal(canSend, sendsTo.has(queue), `${name} SendMessage on ${queue}`);
      }
    });

    test(`${name}: consumes only the queue that triggers it`, () => {
      const trigger = Functions[name].trigger;
      const consumed = trigger.kind === "queue" ? trigger.queue : undefined;
      for (const queue of queueNames) {
        const canReceive = actionsOn(statements, queueArn(queue)).includes("sqs:ReceiveMessage");
        assert.equal(canReceive, queue === consumed, `${name} ReceiveMessage on ${queue}`);
      }
    });

    test(`${name}: reads the Twilio secret and nothing else in Secrets Manager`, () => {
      const secretStatements = statements.filter((s) =>
        s.actions.some((a) => a.startsWith("secretsmanager:")),
      );
      assert.deepEqual(
        secretStatements.flatMap((s) => s.resources),
        [ref(logicalIdOf(backbone.stateful.twilioSecret))],
      );
      assert.deepEqual(secretStatements.flatMap((s) => s.actions).sort(), [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
      ]);
    });

    test(`${name}: writes logs only to its own log group`, () => {
      const logStatements = statements.filter((s) => s.actions.some((a) => a.startsWith("logs:")));
      assert.deepEqual(
        logStatements.flatMap((s) => s.resources),
        [getAtt(logicalIdOf(backbone.service.functions[name].logGroup), "Arn")],
      );
    });

    test(`${name}: no action or resource is a wildcard`, () => {
      for (const statement of statements) {
        assert.equal(statement.effect, "Allow");
        assert.ok(
          !statement.actions.some((action) => action.includes("*")),
          JSON.stringify(statement.actions),
        );
        assert.ok(!statement.resources.includes("*"), JSON.stringify(statement.resources));
      }
    });
  }
});
