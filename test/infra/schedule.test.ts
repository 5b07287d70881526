// The closer runs on an EventBridge Scheduler schedule (not a legacy rule) at the rate from `Functions`,
// with bounded retries and a dead-letter queue for runs that could not be delivered.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Functions } from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import {
  actionsOn,
  crossStackResolver,
  getAtt,
  logicalIdOf,
  ref,
  resourceProperties,
  roleStatements,
} from "./template-queries.ts";

const { backbone, stateful, service } = synthesizeBackbone();
const closerSchedule = backbone.service.closerSchedule;
const schedule = resourceProperties(service, logicalIdOf(closerSchedule.schedule));
const target = Object(schedule.Target);
const closerArn = getAtt(logicalIdOf(backbone.service.functions.closer.function), "Arn");
const deadLetterArn = getAtt(logicalIdOf(closerSchedule.deadLetterQueue), "Arn");
const rateMinutes = Functions.closer.trigger.rateMinutes;

describe("closer schedule", () => {
  test(`invokes the closer every ${rateMinutes} minutes`, () => {
    assert.equal(schedule.ScheduleExpression, `rate(${rateMinutes} minutes)`);
    assert.equal(schedule.State, "ENABLED");
    assert.deepEqual(target.Arn, closerArn);
  });

  test("retries a few times but never past the next scheduled run", () => {
    const retry = Object(target.RetryPolicy);
    assert.ok(retry.MaximumRetryAttempts > 0 && retry.MaximumRetryAttempts <= 5);
    assert.ok(retry.MaximumEventAgeInSeconds >= 60);
    assert.ok(retry.MaximumEventAgeInSeconds <= rateMinutes * 60);
  });

  test("sends undeliverable runs to its own TLS-only dead-letter queue", () => {
    assert.deepEqual(target.DeadLetterConfig, { Arn: deadLetterArn });
    const dlqPolicy = JSON.stringify(service.findResources("AWS::SQS::QueuePolicy"));
    assert.ok(dlqPolicy.includes(`"${logicalIdOf(closerSchedule.deadLetterQueue)}"`));
    assert.ok(dlqPolicy.includes('"aws:SecureTransport":"false"'));
  });

  test("its role may invoke only the closer and write only to that dead-letter queue", () => {
    const roleId = String(Object(target.RoleArn)["Fn::GetAtt"][0]);
    const statements = roleStatements(service, roleId, crossStackResolver(stateful));
    assert.deepEqual(actionsOn(statements, closerArn), ["lambda:InvokeFunction"]);
    assert.deepEqual(actionsOn(statements, deadLetterArn), ["sqs:SendMessage"]);
    const resources = statements.flatMap((statement) => statement.resources.map((r) => JSON.stringify(r)));
    assert.ok(
      resources.every((r) => r.includes(JSON.stringify(closerArn)) || r === JSON.stringify(deadLetterArn)),
    );
  });

  test("Lambda does not retry a failed sweep on its own, so sweeps never overlap", () => {
    const configs = Object.values(service.findResources("AWS::Lambda::EventInvokeConfig"));
    assert.equal(configs.length, 1);
    const [config] = configs;
    assert.deepEqual(
      config?.Properties.FunctionName,
      ref(logicalIdOf(backbone.service.functions.closer.function)),
    );
    assert.equal(config?.Properties.MaximumRetryAttempts, 0);
    assert.equal(config?.Properties.MaximumEventAgeInSeconds, rateMinutes * 60);
  });

  test("no legacy EventBridge scheduled rule exists", () => {
    assert.deepEqual(service.findResources("AWS::Events::Rule"), {});
  });
});
