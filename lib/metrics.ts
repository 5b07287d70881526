// The CloudWatch metrics the functions emit as EMF (lib/adapters/telemetry.ts) and the one dimension
// they carry: the single list that the emitters and the alarms and dashboard (infra/constructs/
// monitoring.ts) share, so a renamed metric cannot leave an alarm watching a name nobody writes.

export const MetricNames = {
  // webhook, per request
  webhookRequests: "WebhookRequests",
  duplicatesDropped: "DuplicatesDropped",
  webhookRejected: "WebhookRejected",
  webhookLatency: "WebhookLatency",
  // compliance, per record
  complianceActions: "ComplianceActions",
  complianceFailures: "ComplianceFailures",
  // mirror, per batch
  messagesMirrored: "MessagesMirrored",
  outboundNotPosted: "OutboundNotPosted",
  mirrorFailures: "MirrorFailures",
  // closer, per real (not dry) run
  conversationsClosed: "ConversationsClosed",
  conversationsSkipped: "ConversationsSkipped",
  closeFailures: "CloseFailures",
} as const;

export type MetricName = (typeof MetricNames)[keyof typeof MetricNames];

/**
 * Every metric is published under the single dimension set [[emfDimension]] with the function's name
 * as value; CloudWatch only matches a query that names exactly that dimension set.
 */
export const emfDimension = "Function";
