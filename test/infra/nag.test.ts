// cdk-nag AwsSolutions: the app synthesizes with zero unacknowledged findings, `cdk synth` fails on a new
// one, and every acknowledgement is a reviewed, reasoned exception attached to one specific resource.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { App, Stack, Validations } from "aws-cdk-lib";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { defineBackbone } from "../../infra/backbone.ts";
import { settingsFromContext } from "../../infra/settings.ts";
import { cdkContext, synthesizeBackbone } from "./backbone-fixture.ts";
import { logicalIdOf } from "./template-queries.ts";

const { app, assetRoot, backbone, validationReport } = synthesizeBackbone(
  {},
  { cloudFormationValidation: true },
);

interface Acknowledgement {
  readonly id: string;
  readonly reason: string;
  readonly path: string;
  readonly construct: IConstruct;
}

const acknowledgements: Acknowledgement[] = app.node.findAll().flatMap((construct) =>
  construct.node.metadata
    .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((entry) =>
      Object.entries(Object(entry.data)).map(([id, reason]) => ({
        id: id.replace(/^annotation::/i, ""),
        reason: String(reason),
        path: construct.node.path,
        construct,
      })),
    ),
);

describe("cdk-nag AwsSolutions", () => {
  test("the backbone has no unacknowledged finding, error or warning", () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    const findings = report.violations.map((violation) => `${violation.severity} ${violation.ruleName}`);
    assert.deepEqual(findings, []);
    assert.equal(report.success, true);
  });

  test("the synthesized validation report holds no violation from any plugin (cdk-nag, CloudFormation)", () => {
    const reports = Object(validationReport).pluginReports;
    assert.ok(Array.isArray(reports));
    const violations = reports.flatMap((report: { violations?: unknown[] }) => report.violations ?? []);
    assert.deepEqual(violations, []);
  });

  test("synthesis fails when a resource introduces an unacknowledged finding", () => {
    // In-memory mode puts the report into the error instead of printing it, as `cdk synth` would.
    const probeApp = new App({ context: { ...cdkContext(), "@aws-cdk/core:appMode": "inmemory" } });
    const { stateful } = defineBackbone(probeApp, {
      settings: settingsFromContext(() => undefined),
      assetRoot,
    });
    new Queue(stateful, "ProbeQueueWithoutDeadLetterQueue");
    assert.throws(() => probeApp.synth(), /AwsSolutions-SQS3/);
  });

  test("acknowledgements are attached to resources, never to a whole stack or the app", () => {
    for (const { path, construct } of acknowledgements) {
      assert.ok(
        !(construct instanceof App) && !(construct instanceof Stack),
        `${path} acknowledges too broadly`,
      );
    }
  });

  test("every acknowledgement explains itself in a full sentence", () => {
    for (const { id, reason, path } of acknowledgements) {
      assert.ok(reason.length >= 80, `${id} at ${path} needs a specific reason, got "${reason}"`);
    }
  });

  test("only the reviewed exceptions are acknowledged", () => {
    const reviewed = acknowledgements.map(({ id, path }) => `${id} @ ${path}`).sort();
    const closerId = logicalIdOf(backbone.service.functions.closer.function);
    assert.deepEqual(reviewed, [
      `AwsSolutions-APIG4 @ ${backbone.service.stackName}/WebhookApi/Api/POST--twilio--conversations`,
      `AwsSolutions-APIG4 @ ${backbone.service.stackName}/WebhookApi/Api/POST--twilio--messaging--inbound`,
      `AwsSolutions-APIG4 @ ${backbone.service.stackName}/WebhookApi/Api/POST--twilio--messaging--status`,
      `AwsSolutions-DDB3 @ ${backbone.stateful.stackName}/DedupeTable`,
      `AwsSolutions-IAM5[Resource::<${closerId}.Arn>:*] @ ${backbone.service.stackName}/CloserSchedule/InvokeRole`,
      `AwsSolutions-SMG4 @ ${backbone.stateful.stackName}/Twilio/Secret`,
      `AwsSolutions-SQS3 @ ${backbone.service.stackName}/CloserSchedule/DeadLetterQueue`,
    ]);
  });
});
