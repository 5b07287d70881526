// The public webhook endpoint: an HTTP API (payload 2.0) with one POST route per `WebhookRoutes` entry,
// all integrated with the webhook function, on a throttled `$default` stage with JSON access logs, and an
// optional custom domain. `baseUrl` is the origin Twilio signs against; routes hang directly off it.
import { Fn, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import {
  ApiMapping,
  DomainName,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  PayloadFormatVersion,
  SecurityPolicy,
} from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import { Certificate } from "aws-cdk-lib/aws-certificatemanager";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { type WebhookRoutePath, WebhookRoutes } from "../../lib/resources.ts";
import type { ApiThrottle, CustomDomain } from "../settings.ts";

export interface WebhookApiProps {
  readonly handler: IFunction;
  readonly throttle: ApiThrottle;
  readonly logRetention: RetentionDays;
  readonly customDomain?: CustomDomain;
}

// No query strings or bodies: Twilio payloads carry phone numbers and message text.
const accessLogFormat = AccessLogFormat.custom(
  JSON.stringify({
    requestId: "$context.requestId",
    requestTime: "$context.requestTimeEpoch",
    sourceIp: "$context.identity.sourceIp",
    userAgent: "$context.identity.userAgent",
    routeKey: "$context.routeKey",
    status: "$context.status",
    responseLength: "$context.responseLength",
    responseLatency: "$context.responseLatency",
    integrationStatus: "$context.integrationStatus",
    integrationLatency: "$context.integrationLatency",
    integrationError: "$context.integrationErrorMessage",
  }),
);

export class WebhookApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;
  /** `https://<host>` without a trailing slash. */
  readonly baseUrl: string;
  /** Where to point a DNS CNAME/alias for the custom domain, when one is configured. */
  readonly customDomainTarget?: string;

  constructor(scope: Construct, id: string, props: WebhookApiProps) {
    super(scope, id);
    this.api = new HttpApi(this, "Api", {
      description: "Twilio webhooks (Conversations, Messaging inbound and status)",
      createDefaultStage: false,
      // With a custom domain, Twilio signs the custom URL; requests to the execute-api host could only
      // ever fail signature checks, so that endpoint is switched off.
      disableExecuteApiEndpoint: props.customDomain !== undefined,
    });

    this.accessLogs = new LogGroup(this, "AccessLogs", {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, "DefaultStage", {
      httpApi: this.api,
      stageName: "$default",
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: accessLogFormat,
      },
    });

    const integration = new HttpLambdaIntegration("Webhook", props.handler, {
      payloadFormatVersion: PayloadFormatVersion.VERSION_2_0,
    });
    for (const path of Object.keys(WebhookRoutes)) {
      for (const route of this.api.addRoutes({ path, methods: [HttpMethod.POST], integration })) {
        Validations.of(route).acknowledge({
          id: "AwsSolutions-APIG4",
          reason:
            "Twilio cannot present API Gateway credentials; every request is authenticated in the webhook function by its X-Twilio-Signature (HMAC-SHA1 over the exact URL and the signed parameters, keyed with the account auth token) and rejected otherwise.",
        });
      }
    }

    if (props.customDomain) {
      const domain = new DomainName(this, "Domain", {
        domainName: props.customDomain.domainName,
        certificate: Certificate.fromCertificateArn(this, "Certificate", props.customDomain.certificateArn),
        securityPolicy: SecurityPolicy.TLS_1_2,
      });
      // Root mapping (no mapping key): API Gateway never forwards a mapping key to the function, so any
      // prefix would make the signed URL and the rebuilt URL differ.
      new ApiMapping(this, "Mapping", { api: this.api, domainName: domain, stage: this.stage });
      this.baseUrl = `https://${props.customDomain.domainName}`;
      this.customDomainTarget = domain.regionalDomainName;
    } else {
      // Built from the API id alone: the function may only reference resources that do not depend on it
      // (the integration, routes and invoke permissions all do), and `$default` adds no path prefix.
      const stack = Stack.of(this);
      this.baseUrl = Fn.join("", [
        "https://",
        this.api.apiId,
        ".execute-api.",
        stack.region,
        ".",
        stack.urlSuffix,
      ]);
    }
  }

  /** The exact URL to configure in Twilio for `path`. */
  urlOf(path: WebhookRoutePath): string {
    return `${this.baseUrl}${path}`;
  }
}
