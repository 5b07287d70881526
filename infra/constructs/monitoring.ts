// Alarms to one SNS topic and one CloudWatch dashboard for the whole backbone. Alarm thresholds are derived
// from lib/resources.ts where a contract value defines "unhealthy" (queue age vs redrive horizon, closer
// rate), so they move with the settings they watch.
import { CfnOutput, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import type { IHttpApi } from "aws-cdk-lib/aws-apigatewayv2";
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { emfDimension, type MetricName, MetricNames } from "../../lib/metrics.ts";
import {
  type FunctionName,
  functionNames,
  type QueueName,
  Queues,
  visibilityTimeoutSeconds,
} from "../../lib/resources.ts";
import { OutputKeys } from "../stack-outputs.ts";
import type { FifoWorkQueue } from "./fifo-work-queue.ts";

export interface MonitoringProps {
  readonly functions: Readonly<Record<FunctionName, IFunction>>;
  readonly queues: Readonly<Record<QueueName, FifoWorkQueue>>;
  readonly closerDeadLetterQueue: IQueue;
  readonly closerRateMinutes: number;
  readonly api: IHttpApi;
  readonly metricsNamespace: string;
  readonly alarmEmail?: string;
}

const fiveMinutes = Duration.minutes(5);

// Low-traffic guard: a single 5xx out of three requests is not an outage worth paging for.
const minimumRequestsForRate = 20;

export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[] = [];
  private readonly action: SnsAction;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    // CloudWatch can only publish to an encrypted topic through a customer managed key it may use.
    const key = new Key(this, "TopicKey", {
      description: "Encrypts the Twilio backbone alarm topic",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
      }),
    );
    this.topic = new Topic(this, "AlarmTopic", {
      displayName: "Twilio backbone alarms",
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    this.action = new SnsAction(this.topic);

    const custom = (fn: FunctionName, metricName: MetricName, period = fiveMinutes) =>
      new Metric({
        namespace: props.metricsNamespace,
        metricName,
        dimensionsMap: { [emfDimension]: fn },
        statistic: "Sum",
        period,
      });

    this.queueAlarms(props.queues, props.closerDeadLetterQueue);
    this.apiAlarms(props.api);
    for (const name of functionNames) this.functionAlarms(name, props.functions[name]);
    this.alarm("CloserFailures", {
      metric: custom("closer", MetricNames.closeFailures, Duration.minutes(props.closerRateMinutes)),
      threshold: 1,
      description: "The closer failed to close at least one stale conversation in its last run",
    });

    this.dashboard = new Dashboard(this, "Dashboard", { defaultInterval: Duration.hours(6) });
    const queueNames = Object.keys(props.queues).filter((name): name is QueueName => name in Queues);
    const workQueues = queueNames.map((name) => ({
      name,
      queue: props.queues[name].queue,
      deadLetterQueue: props.queues[name].deadLetterQueue,
    }));
    const api = props.api;
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Webhook requests",
        left: [
          api.metricCount({ statistic: "Sum", label: "API requests" }),
          custom("webhook", MetricNames.webhookRequests).with({ label: "Handled by the function" }),
          custom("webhook", MetricNames.webhookRejected).with({ label: "Rejected (4xx) by the function" }),
          api.metricClientError({ statistic: "Sum", label: "4xx" }),
          api.metricServerError({ statistic: "Sum", label: "5xx" }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: "Webhook latency (ms)",
        left: [
          api.metricLatency({ statistic: "p95", label: "API p95" }),
          api.metricLatency({ statistic: "p99", label: "API p99" }),
          api.metricIntegrationLatency({ statistic: "p99", label: "Integration p99" }),
          custom("webhook", MetricNames.webhookLatency).with({ statistic: "p95", label: "Handler p95" }),
          custom("webhook", MetricNames.webhookLatency).with({ statistic: "p99", label: "Handler p99" }),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Duplicates dropped",
        left: [custom("webhook", MetricNames.duplicatesDropped)],
        width: 8,
      }),
      new GraphWidget({
        title: "Queue depth (visible messages)",
        left: workQueues.flatMap(({ name, queue, deadLetterQueue }) => [
          queue.metricApproximateNumberOfMessagesVisible({ statistic: "Maximum", label: name }),
          deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            statistic: "Maximum",
            label: `${name} DLQ`,
          }),
        ]),
        width: 8,
      }),
      new GraphWidget({
        title: "Oldest message age (s)",
        left: workQueues.map(({ name, queue }) =>
          queue.metricApproximateAgeOfOldestMessage({ statistic: "Maximum", label: name }),
        ),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Compliance actions",
        left: [custom("compliance", MetricNames.complianceActions)],
        width: 8,
      }),
      new GraphWidget({
        title: "Mirroring",
        left: [
          custom("mirror", MetricNames.messagesMirrored).with({ label: "Messages mirrored" }),
          custom("mirror", MetricNames.outboundNotPosted).with({
            label: "Outbound not posted (customer bound)",
          }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Conversations closed",
        left: [
          custom("closer", MetricNames.conversationsClosed),
          custom("closer", MetricNames.conversationsSkipped),
          custom("closer", MetricNames.closeFailures),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(new AlarmStatusWidget({ title: "Alarms", alarms: this.alarms, width: 24 }));

    const region = Stack.of(this).region;
    new CfnOutput(Stack.of(this), OutputKeys.alarmTopicArn, { value: this.topic.topicArn });
    new CfnOutput(Stack.of(this), OutputKeys.dashboardUrl, {
      value: `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboard.dashboardName}`,
    });
  }

  private queueAlarms(queues: MonitoringProps["queues"], closerDeadLetterQueue: IQueue): void {
    for (const name of Object.keys(queues).filter((key): key is QueueName => key in Queues)) {
      const { queue, deadLetterQueue } = queues[name];
      this.deadLetterAlarm(`${pascal(name)}DeadLetterNotEmpty`, deadLetterQueue, `${name} queue`);
      // A healthy message is consumed within one visibility timeout and a poison one reaches the DLQ after
      // maxReceiveCount of them; anything older than that means the consumer has stalled.
      const stalledAfter = visibilityTimeoutSeconds(name) * Queues[name].maxReceiveCount;
      this.alarm(`${pascal(name)}OldestMessageAge`, {
        metric: queue.metricApproximateAgeOfOldestMessage({ statistic: "Maximum", period: fiveMinutes }),
        threshold: stalledAfter,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description: `The oldest message on the ${name} queue is older than ${stalledAfter} s: its consumer is stalled or throttled`,
      });
    }
    this.deadLetterAlarm("CloserScheduleDeadLetterNotEmpty", closerDeadLetterQueue, "closer schedule");
  }

  private deadLetterAlarm(id: string, deadLetterQueue: IQueue, source: string): void {
    this.alarm(id, {
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: "Maximum",
        period: Duration.minutes(1),
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: `The ${source} dead-letter queue has messages: inspect them, fix the cause, then redrive`,
    });
  }

  private apiAlarms(api: IHttpApi): void {
    const rate = (errors: IMetric) =>
      new MathExpression({
        expression: `IF(requests >= ${minimumRequestsForRate}, 100 * errors / requests, 0)`,
        usingMetrics: { errors, requests: api.metricCount({ statistic: "Sum", period: fiveMinutes }) },
        period: fiveMinutes,
      });
    this.alarm("Webhook5xxRate", {
      metric: rate(api.metricServerError({ statistic: "Sum", period: fiveMinutes })),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: "More than 1% of webhook requests failed with 5xx: Twilio retries or drops these events",
    });
    // Signature failures (wrong PUBLIC_WEBHOOK_BASE_URL, rotated token) surface as 4xx; scanners add noise,
    // hence the higher bar and three consecutive periods.
    this.alarm("Webhook4xxRate", {
      metric: rate(api.metricClientError({ statistic: "Sum", period: fiveMinutes })),
      threshold: 10,
      evaluationPeriods: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        "More than 10% of webhook requests were rejected with 4xx for 15 minutes: check URL and auth token",
    });
  }

  private functionAlarms(name: FunctionName, fn: IFunction): void {
    this.alarm(`${pascal(name)}FunctionErrors`, {
      metric: fn.metricErrors({ statistic: "Sum", period: fiveMinutes }),
      threshold: 1,
      description: `The ${name} function threw unhandled errors`,
    });
    this.alarm(`${pascal(name)}FunctionThrottles`, {
      metric: fn.metricThrottles({ statistic: "Sum", period: fiveMinutes }),
      threshold: 1,
      description: `The ${name} function was throttled: account concurrency is exhausted`,
    });
  }

  private alarm(
    id: string,
    props: {
      metric: IMetric;
      threshold: number;
      description: string;
      evaluationPeriods?: number;
      comparisonOperator?: ComparisonOperator;
    },
  ): void {
    const alarm = new Alarm(this, id, {
      metric: props.metric,
      threshold: props.threshold,
      evaluationPeriods: props.evaluationPeriods ?? 1,
      comparisonOperator: props.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: props.description,
    });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    this.alarms.push(alarm);
  }
}

const pascal = (name: string): string => name.charAt(0).toUpperCase() + name.slice(1);
