// Runs the stale-conversation closer every `rateMinutes` through EventBridge Scheduler (not a legacy
// scheduled rule): bounded retries, and a dead-letter queue for invocations Scheduler could not deliver.
import { CfnElement, Duration, Stack, Validations } from "aws-cdk-lib";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Schedule, ScheduleExpression } from "aws-cdk-lib/aws-scheduler";
import { LambdaInvoke } from "aws-cdk-lib/aws-scheduler-targets";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

export interface CloserScheduleProps {
  readonly closer: IFunction;
  readonly rateMinutes: number;
}

export class CloserSchedule extends Construct {
  readonly schedule: Schedule;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: CloserScheduleProps) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself the dead-letter queue of the closer schedule target; nothing consumes it, so it needs no DLQ of its own.",
    });

    const role = new Role(this, "InvokeRole", {
      assumedBy: new ServicePrincipal("scheduler.amazonaws.com"),
      description: "Lets EventBridge Scheduler invoke the closer and write undeliverable runs to its DLQ",
    });
    const closerResource = props.closer.node.defaultChild;
    if (closerResource instanceof CfnElement) {
      const closerLogicalId: unknown = Stack.of(closerResource).resolve(closerResource.logicalId);
      Validations.of(role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${String(closerLogicalId)}.Arn>:*]`,
        reason:
          "LambdaInvoke grants lambda:InvokeFunction on the closer and its qualified ARNs (versions/aliases, ':*'); the wildcard never reaches another function.",
      });
    }

    // Scheduler invokes the closer asynchronously. Lambda's own async retries (two, minutes apart, kept for
    // up to six hours) could stack sweeps on top of the next scheduled one; the sweep is idempotent and
    // runs again at the next tick anyway, so a failed run is alarmed on, not retried.
    props.closer.configureAsyncInvoke({
      retryAttempts: 0,
      maxEventAge: Duration.minutes(props.rateMinutes),
    });

    this.schedule = new Schedule(this, "Schedule", {
      description: `Closes stale Twilio conversations every ${props.rateMinutes} minutes`,
      schedule: ScheduleExpression.rate(Duration.minutes(props.rateMinutes)),
      target: new LambdaInvoke(props.closer, {
        role,
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 3,
        // A run that cannot start within one interval is superseded by the next one; retrying later would
        // only overlap two closers.
        maxEventAge: Duration.minutes(props.rateMinutes),
      }),
    });
  }
}
