// Names of the CloudFormation outputs that operators and `lib/tools/twilio-configure.ts` read from
// `cdk deploy --outputs-file`. Kept free of CDK imports so the tool can use them without loading aws-cdk-lib.
import type { WebhookRouteKind } from "../lib/resources.ts";

const pascal = (kind: string): string =>
  kind
    .split("-")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");

/** `ConversationsWebhookUrl`, `MessagingInboundWebhookUrl`, `MessagingStatusWebhookUrl`. */
export const webhookUrlOutputKey = (kind: WebhookRouteKind): string => `${pascal(kind)}WebhookUrl`;

export const OutputKeys = {
  webhookBaseUrl: "WebhookBaseUrl",
  customDomainTarget: "CustomDomainTarget",
  alarmTopicArn: "AlarmTopicArn",
  dashboardUrl: "DashboardUrl",
  twilioSecretArn: "TwilioSecretArn",
} as const;
