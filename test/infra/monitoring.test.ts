// Alarms that page through the SNS topic — DLQs, queue age, webhook error rates, function errors and
// throttles, closer failures — and the dashboard panels operators look at first.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OutputKeys } from "../../infra/stack-outputs.ts";
import { defaultMetricsNamespace } from "../../lib/function-env.ts";
import { emfDimension, MetricNames } from "../../lib/metrics.ts";
import { functionNames, Queues, queueNames, visibilityTimeoutSeconds } from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import {
  crossStackResolver,
  getAtt,
  logicalIdOf,
  ref,
  resourceProperties,
  resourcesOfType,
} from "./template-queries.ts";

const { backbone, stateful, service } = synthesizeBackbone();
const resolve = crossStackResolver(stateful);
const topicId = logicalIdOf(backbone.service.monitoring.topic);
const alarms = resourcesOfType(service, "AWS::CloudWatch::Alarm").map(([id, properties]) => ({
  id,
  properties: Object(resolve(properties)),
}));

const alarmOn = (metricName: string, dimension?: { Name: string; Value: unknown }) => {
  const matches = alarms.filter(
    ({ properties }) =>
      properties.MetricName === metricName &&
      (dimension === undefined || JSON.stringify(properties.Dimensions) === JSON.stringify([dimension])),
  );
  assert.equal(matches.length, 1, `expected one alarm on ${metricName} ${JSON.stringify(dimension ?? {})}`);
  const [match] = matches;
  assert.ok(match);
  return match.properties;
};

const rateAlarmOn = (metricName: string) => {
  const match = alarms.find(({ properties }) =>
    JSON.stringify(properties.Metrics ?? []).includes(`"${metricName}"`),
  );
  assert.ok(match, `no rate alarm over ${metricName}`);
  return match.properties;
};

describe("queue alarms", () => {
  const deadLetterQueues = [
    ...queueNames.map((name) => ({ label: name, queue: backbone.stateful.queues[name].deadLetterQueue })),
    { label: "closer schedule", queue: backbone.service.closerSchedule.deadLetterQueue },
  ];
  for (const { label, queue } of deadLetterQueues) {
    test(`the ${label} DLQ alarms as soon as it holds one message`, () => {
      const alarm = alarmOn("ApproximateNumberOfMessagesVisible", {
        Name: "QueueName",
        Value: getAtt(logicalIdOf(queue), "QueueName"),
      });
      assert.equal(alarm.Threshold, 0);
      assert.equal(alarm.ComparisonOperator, "GreaterThanThreshold");
      assert.equal(alarm.Statistic, "Maximum");
    });
  }

  for (const name of queueNames) {
    test(`${name} queue alarms when its oldest message outlives the whole redrive horizon`, () => {
      const alarm = alarmOn("ApproximateAgeOfOldestMessage", {
        Name: "QueueName",
        Value: getAtt(Queues[name].logicalId, "QueueName"),
      });
      assert.equal(alarm.Threshold, visibilityTimeoutSeconds(name) * Queues[name].maxReceiveCount);
      assert.equal(alarm.ComparisonOperator, "GreaterThanThreshold");
    });
  }
});

describe("webhook API alarms", () => {
  test("5xx rate above 1% of at least 20 requests in 5 minutes", () => {
    const alarm = rateAlarmOn("5xx");
    assert.equal(alarm.Threshold, 1);
    assert.match(JSON.stringify(alarm.Metrics), /IF\(requests >= 20, 100 \* errors \/ requests, 0\)/);
    assert.equal(alarm.EvaluationPeriods, 1);
  });

  test("4xx rate above 10% for three consecutive 5-minute periods", () => {
    const alarm = rateAlarmOn("4xx");
    assert.equal(alarm.Threshold, 10);
    assert.equal(alarm.EvaluationPeriods, 3);
  });
});

describe("function alarms", () => {
  for (const name of functionNames) {
    const dimension = {
      Name: "FunctionName",
      Value: ref(logicalIdOf(backbone.service.functions[name].function)),
    };

    test(`${name} alarms on any unhandled error`, () => {
      const alarm = alarmOn("Errors", dimension);
      assert.equal(alarm.Threshold, 1);
      assert.equal(alarm.ComparisonOperator, "GreaterThanOrEqualToThreshold");
    });

    test(`${name} alarms on any throttle`, () => {
      assert.equal(alarmOn("Throttles", dimension).Threshold, 1);
    });
  }

  test("the closer alarms when a run reports a close failure", () => {
    const alarm = alarmOn(MetricNames.closeFailures, { Name: emfDimension, Value: "closer" });
    assert.equal(alarm.Namespace, defaultMetricsNamespace);
    assert.equal(alarm.Threshold, 1);
    assert.equal(alarm.Statistic, "Sum");
  });
});

describe("notification", () => {
  test("every alarm notifies the alarm topic on alarm and on recovery", () => {
    for (const { id, properties } of alarms) {
      assert.deepEqual(properties.AlarmActions, [ref(topicId)], id);
      assert.deepEqual(properties.OKActions, [ref(topicId)], id);
      assert.equal(properties.TreatMissingData, "notBreaching", id);
    }
  });

  test("the alarm topic is KMS-encrypted with a rotating key CloudWatch may use", () => {
    const topic = resourceProperties(service, topicId);
    const keyId = String(Object(topic.KmsMasterKeyId)["Fn::GetAtt"][0]);
    const key = resourceProperties(service, keyId);
    assert.equal(key.EnableKeyRotation, true);
    assert.match(JSON.stringify(key.KeyPolicy), /"Service":"cloudwatch\.amazonaws\.com"/);
  });

  test("the alarm topic ARN and dashboard URL are stack outputs", () => {
    const outputs = service.toJSON().Outputs;
    assert.deepEqual(outputs[OutputKeys.alarmTopicArn].Value, ref(topicId));
    assert.match(JSON.stringify(outputs[OutputKeys.dashboardUrl].Value), /#dashboards\/dashboard\//);
  });
});

describe("dashboard", () => {
  const body = JSON.stringify(
    resourceProperties(service, logicalIdOf(backbone.service.monitoring.dashboard)).DashboardBody,
  );
  const panels: Array<[string, RegExp[]]> = [
    ["webhook requests", [/\\"WebhookRequests\\"/, /\\"Count\\"/]],
    [
      "webhook latency p95/p99",
      [/\\"Latency\\"[^\]]*\\"stat\\":\\"p95\\"/, /\\"Latency\\"[^\]]*\\"stat\\":\\"p99\\"/],
    ],
    ["duplicates dropped", [new RegExp(`\\\\"${MetricNames.duplicatesDropped}\\\\"`)]],
    ["queue depth", [/\\"ApproximateNumberOfMessagesVisible\\"/]],
    ["queue age", [/\\"ApproximateAgeOfOldestMessage\\"/]],
    ["compliance actions", [new RegExp(`\\\\"${MetricNames.complianceActions}\\\\"`)]],
    ["messages mirrored", [new RegExp(`\\\\"${MetricNames.messagesMirrored}\\\\"`)]],
    ["outbound messages not posted", [new RegExp(`\\\\"${MetricNames.outboundNotPosted}\\\\"`)]],
    ["conversations closed", [new RegExp(`\\\\"${MetricNames.conversationsClosed}\\\\"`)]],
  ];
  for (const [panel, patterns] of panels) {
    test(`shows ${panel}`, () => {
      for (const pattern of patterns) assert.match(body, pattern);
    });
  }

  test("reads custom metrics from the namespace and Function dimension the functions write", () => {
    const emitted: Array<[string, string]> = [
      ["webhook", MetricNames.webhookRequests],
      ["webhook", MetricNames.duplicatesDropped],
      ["compliance", MetricNames.complianceActions],
      ["mirror", MetricNames.messagesMirrored],
      ["mirror", MetricNames.outboundNotPosted],
      ["closer", MetricNames.conversationsClosed],
    ];
    for (const [fn, metric] of emitted) {
      const query = [defaultMetricsNamespace, metric, emfDimension, fn]
        .map((part) => `\\"${part}\\"`)
        .join(",");
      assert.ok(body.includes(query), `dashboard lacks ${metric} of ${fn}`);
    }
  });
});
