// A FIFO work queue with its FIFO dead-letter queue, configured from its `Queues` entry: redrive after
// `maxReceiveCount`, visibility covering six consumer timeouts, high-throughput FIFO and TLS-only access.
import { CfnResource, Duration, Names } from "aws-cdk-lib";
import { DeduplicationScope, FifoThroughputLimit, Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { type QueueName, Queues, queueNameSuffix, visibilityTimeoutSeconds } from "../../lib/resources.ts";

export interface FifoWorkQueueProps {
  readonly queue: QueueName;
}

// Messages left in a DLQ are evidence for a redrive; keep them as long as SQS allows.
const deadLetterRetention = Duration.days(14);

export class FifoWorkQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: FifoWorkQueueProps) {
    super(scope, id);
    const definition = Queues[props.queue];
    const suffix = queueNameSuffix(props.queue);
    // High-throughput FIFO: dedupe and throughput quotas apply per message group, not per queue, because
    // the webhook spreads load over one group per customer address or conversation.
    const fifo = {
      fifo: definition.fifo,
      deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      enforceSSL: true,
    };

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      ...fifo,
      queueName: this.physicalName("DeadLetterQueue", suffix),
      retentionPeriod: deadLetterRetention,
    });
    this.queue = new Queue(this, "Queue", {
      ...fifo,
      queueName: this.physicalName("Queue", suffix),
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(props.queue)),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
    });
    pinLogicalId(this.queue, definition.logicalId);
    pinLogicalId(this.deadLetterQueue, `${definition.logicalId}DeadLetter`);
  }

  // Named explicitly only to guarantee the `.fifo` suffix SQS requires; the rest is generated from the
  // construct path (unique per stack and Region), never hard-coded.
  private physicalName(child: string, suffix: string): string {
    const base = Names.uniqueResourceName(this, { maxLength: 80 - suffix.length - child.length });
    return `${base}${child}${suffix}`;
  }
}

const pinLogicalId = (queue: Queue, logicalId: string): void => {
  if (queue.node.defaultChild instanceof CfnResource) queue.node.defaultChild.overrideLogicalId(logicalId);
};
