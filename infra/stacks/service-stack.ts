// The stateless half: the four functions, the webhook API, the closer schedule, alarms and dashboard.
// Each function is wired from its `Functions` entry — tables, queues it sends to, its trigger — through
// the BackboneFunction binders, so env vars and grants come from one place.
import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import { functionSendsTo, functionTables, receivesWebhooks } from "../../lib/function-env.ts";
import {
  type FunctionName,
  Functions,
  functionNames,
  type QueueName,
  type TableName,
  type WebhookRoutePath,
  WebhookRoutes,
} from "../../lib/resources.ts";
import { BackboneFunction } from "../constructs/backbone-function.ts";
import { CloserSchedule } from "../constructs/closer-schedule.ts";
import type { FifoWorkQueue } from "../constructs/fifo-work-queue.ts";
import { Monitoring } from "../constructs/monitoring.ts";
import { WebhookApi } from "../constructs/webhook-api.ts";
import type { BackboneSettings } from "../settings.ts";
import { OutputKeys, webhookUrlOutputKey } from "../stack-outputs.ts";

export interface StatefulResources {
  readonly tables: Readonly<Record<TableName, ITable>>;
  readonly queues: Readonly<Record<QueueName, FifoWorkQueue>>;
  readonly twilioSecret: ISecret;
}

export interface ServiceStackProps extends StackProps {
  readonly stateful: StatefulResources;
  /** Directory with one prebuilt bundle per function: `<assetRoot>/<name>/index.mjs`. */
  readonly assetRoot: string;
  readonly settings: BackboneSettings;
}

const isRoutePath = (path: string): path is WebhookRoutePath => path in WebhookRoutes;

export class ServiceStack extends Stack {
  readonly functions: Readonly<Record<FunctionName, BackboneFunction>>;
  readonly webhookApi: WebhookApi;
  readonly closerSchedule: CloserSchedule;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { stateful, settings } = props;
    const backboneFunction = (name: FunctionName, constructId: string) =>
      new BackboneFunction(this, constructId, {
        name,
        assetRoot: props.assetRoot,
        logRetention: settings.logRetention,
        metricsNamespace: settings.metricsNamespace,
      });
    this.functions = {
      webhook: backboneFunction("webhook", "Webhook"),
      compliance: backboneFunction("compliance", "Compliance"),
      mirror: backboneFunction("mirror", "Mirror"),
      closer: backboneFunction("closer", "Closer"),
    };

    for (const name of functionNames) {
      const fn = this.functions[name];
      fn.bindSecret(stateful.twilioSecret);
      fn.bindSettings(settings.functionSettings);
      for (const { table, access } of functionTables(name))
        fn.bindTable(table, stateful.tables[table], access);
      for (const queue of functionSendsTo(name)) fn.bindQueueSend(queue, stateful.queues[queue].queue);
      const trigger = Functions[name].trigger;
      if (trigger.kind === "queue") fn.consumeQueue(stateful.queues[trigger.queue].queue, trigger);
    }

    this.webhookApi = new WebhookApi(this, "WebhookApi", {
      handler: this.functions.webhook.function,
      throttle: settings.apiThrottle,
      logRetention: settings.logRetention,
      customDomain: settings.customDomain,
    });
    for (const name of functionNames) {
      if (receivesWebhooks(name)) this.functions[name].bindPublicWebhookBaseUrl(this.webhookApi.baseUrl);
    }

    const closerTrigger = Functions.closer.trigger;
    this.closerSchedule = new CloserSchedule(this, "CloserSchedule", {
      closer: this.functions.closer.function,
      rateMinutes: closerTrigger.rateMinutes,
    });

    this.monitoring = new Monitoring(this, "Monitoring", {
      functions: {
        webhook: this.functions.webhook.function,
        compliance: this.functions.compliance.function,
        mirror: this.functions.mirror.function,
        closer: this.functions.closer.function,
      },
      queues: stateful.queues,
      closerDeadLetterQueue: this.closerSchedule.deadLetterQueue,
      closerRateMinutes: closerTrigger.rateMinutes,
      api: this.webhookApi.api,
      metricsNamespace: settings.metricsNamespace,
      alarmEmail: settings.alarmEmail,
    });

    for (const path of Object.keys(WebhookRoutes).filter(isRoutePath)) {
      const kind = WebhookRoutes[path];
      new CfnOutput(this, webhookUrlOutputKey(kind), {
        value: this.webhookApi.urlOf(path),
        description: `Paste into Twilio as the ${kind} webhook URL (HTTP POST)`,
      });
    }
    new CfnOutput(this, OutputKeys.webhookBaseUrl, {
      value: this.webhookApi.baseUrl,
      description: "PUBLIC_WEBHOOK_BASE_URL of the webhook function",
    });
    if (this.webhookApi.customDomainTarget) {
      new CfnOutput(this, OutputKeys.customDomainTarget, {
        value: this.webhookApi.customDomainTarget,
        description: "Point a CNAME (or alias) for the custom domain at this API Gateway regional domain",
      });
    }
  }
}
