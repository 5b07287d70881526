// Everything that holds data or credentials: tables, work queues with their DLQs, and the Twilio secret.
// Kept apart from the stateless ServiceStack so functions, API and alarms can be replaced or torn down
// without touching data.
import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import type { QueueName, TableName } from "../../lib/resources.ts";
import { backboneTable } from "../constructs/backbone-table.ts";
import { FifoWorkQueue } from "../constructs/fifo-work-queue.ts";
import { TwilioSecret } from "../constructs/twilio-secret.ts";
import { OutputKeys } from "../stack-outputs.ts";

export interface StatefulStackProps extends StackProps {
  readonly twilioSecretArn?: string;
}

export class StatefulStack extends Stack {
  readonly tables: Readonly<Record<TableName, Table>>;
  readonly queues: Readonly<Record<QueueName, FifoWorkQueue>>;
  readonly twilioSecret: ISecret;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, props);
    // Spelled out per name so that adding a table or queue to lib/resources.ts fails the typecheck here.
    this.tables = {
      dedupe: backboneTable(this, "dedupe"),
      consent: backboneTable(this, "consent"),
      conversations: backboneTable(this, "conversations"),
    };
    this.queues = {
      consent: new FifoWorkQueue(this, "Consent", { queue: "consent" }),
      mirror: new FifoWorkQueue(this, "Mirror", { queue: "mirror" }),
    };
    this.twilioSecret = new TwilioSecret(this, "Twilio", { existingSecretArn: props.twilioSecretArn }).secret;
    new CfnOutput(this, OutputKeys.twilioSecretArn, {
      value: this.twilioSecret.secretArn,
      description: "Put the Twilio credentials JSON here (aws secretsmanager put-secret-value)",
    });
  }
}
