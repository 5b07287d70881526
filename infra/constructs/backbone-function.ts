// One deployable function: the prebuilt bundle from dist/functions/<name>, its own log group with
// retention, and a role that starts with nothing but writing to that log group. Every permission beyond
// that comes from a `bind*` method, which also sets the matching environment variable through the pieces
// of lib/function-env.ts — an env var without its grant (or the reverse) cannot be expressed.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Grant, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Code, Function as LambdaFunction, Runtime } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import {
  type EnvVars,
  publicWebhookEnv,
  queueEnv,
  runtimeEnv,
  secretEnv,
  settingsEnv,
  type TableAccess,
  tableEnv,
} from "../../lib/function-env.ts";
import { type FunctionName, Functions, type QueueName, type TableName, Tables } from "../../lib/resources.ts";
import { MissingAssetError } from "../errors.ts";

export interface BackboneFunctionProps {
  readonly name: FunctionName;
  /** Directory holding `<name>/index.mjs` for every function (normally `dist/functions`). */
  readonly assetRoot: string;
  readonly logRetention: RetentionDays;
  readonly metricsNamespace: string;
}

const readActions = [
  "dynamodb:GetItem",
  "dynamodb:BatchGetItem",
  "dynamodb:Query",
  "dynamodb:ConditionCheckItem",
];
const writeActions = [
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:BatchWriteItem",
];

export const tableActions: Readonly<Record<TableAccess, readonly string[]>> = {
  read: readActions,
  readwrite: [...readActions, ...writeActions],
};

export interface QueueTrigger {
  readonly batchSize: number;
  readonly batchWindowSeconds: number;
  readonly maxConcurrency: number;
}

export class BackboneFunction extends Construct {
  readonly name: FunctionName;
  readonly function: LambdaFunction;
  readonly logGroup: LogGroup;
  readonly role: Role;

  constructor(scope: Construct, id: string, props: BackboneFunctionProps) {
    super(scope, id);
    this.name = props.name;
    const definition = Functions[props.name];
    const bundleDir = join(props.assetRoot, props.name);
    if (!existsSync(join(bundleDir, "index.mjs"))) {
      throw new MissingAssetError(
        `${bundleDir}/index.mjs does not exist; run \`npm run build\` before synth`,
      );
    }

    this.logGroup = new LogGroup(this, "LogGroup", {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // A dedicated role instead of AWSLambdaBasicExecutionRole: logs go to this one log group only.
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of the ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new LambdaFunction(this, "Function", {
      code: Code.fromAsset(bundleDir),
      handler: "index.handler",
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: definition.memoryMb,
      timeout: Duration.seconds(definition.timeoutSeconds),
      role: this.role,
      logGroup: this.logGroup,
      description: `Twilio Conversations backbone: ${props.name}`,
    });
    this.addEnv(runtimeEnv(props.metricsNamespace));
  }

  /**
   * Grants item-level access to the table and its named indexes only. Unlike `grantReadWriteData` there is
   * no `index/*` wildcard, no Scan and no stream actions: every access path is a key lookup or an index Query.
   */
  bindTable(table: TableName, resource: ITable, access: TableAccess): void {
    this.addEnv(tableEnv(table, resource.tableName));
    const indexes: ReadonlyArray<{ name: string }> = Tables[table].indexes;
    Grant.addToPrincipal({
      grantee: this.function,
      actions: [...tableActions[access]],
      resourceArns: [
        resource.tableArn,
        ...indexes.map((index) => `${resource.tableArn}/index/${index.name}`),
      ],
    });
  }

  bindQueueSend(queue: QueueName, resource: IQueue): void {
    this.addEnv(queueEnv(queue, resource.queueUrl));
    resource.grantSendMessages(this.function);
  }

  bindSecret(secret: ISecret): void {
    this.addEnv(secretEnv(secret.secretArn));
    secret.grantRead(this.function);
  }

  /** Deployer settings (tenant config, closer tuning); the function receives only the names it reads. */
  bindSettings(settings: Readonly<Record<string, string>>): void {
    this.addEnv(settingsEnv(this.name, settings));
  }

  /** No grant: the URL is public and only used to rebuild the exact URL Twilio signed. */
  bindPublicWebhookBaseUrl(baseUrl: string): void {
    this.addEnv(publicWebhookEnv(baseUrl));
  }

  /** Consumes `queue` with partial batch responses, so one bad record never redrives its whole batch. */
  consumeQueue(queue: IQueue, trigger: QueueTrigger): void {
    this.function.addEventSource(
      new SqsEventSource(queue, {
        batchSize: trigger.batchSize,
        maxBatchingWindow:
          trigger.batchWindowSeconds > 0 ? Duration.seconds(trigger.batchWindowSeconds) : undefined,
        maxConcurrency: trigger.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
  }

  private addEnv(vars: EnvVars): void {
    for (const [key, value] of Object.entries(vars)) this.function.addEnvironment(key, value);
  }
}
