// Deployment options passed as CDK context (`cdk deploy -c key=value`): custom domain, an existing
// Twilio secret, alarm e-mail, throttling and log retention — and rejection of malformed values.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { settingsFromContext } from "../../infra/settings.ts";
import { OutputKeys, webhookUrlOutputKey } from "../../infra/stack-outputs.ts";
import { EnvNames } from "../../lib/config/env.ts";
import { functionNames, WebhookRoutes } from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import {
  crossStackResolver,
  functionEnvironment,
  logicalIdOf,
  ref,
  resourceProperties,
  resourcesOfType,
  roleStatements,
} from "./template-queries.ts";

const context = {
  domainName: "Hooks.Example.com",
  certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0f2a6c1e-1111-2222-3333-444455556666",
  twilioSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:twilio/backbone-AbC123",
  alarmEmail: "oncall@example.com",
  apiRateLimit: "200",
  apiBurstLimit: "400",
  logRetentionDays: 90,
  functionSettings: { CLOSER_IDLE_MINUTES: 720, DEDUPE_TTL_SECONDS: "259200" },
  tenantConfig: { defaultTenant: "acme", senders: { "+15005550006": "acme" } },
};
const { backbone, stateful, service, validationReport } = synthesizeBackbone(context, {
  cloudFormationValidation: true,
});
const resolve = crossStackResolver(stateful);
const webhookEnv = functionEnvironment(
  service,
  logicalIdOf(backbone.service.functions.webhook.function),
  resolve,
);
const outputs = service.toJSON().Outputs;

describe("custom domain", () => {
  test("the webhook function signs against the custom domain origin", () => {
    assert.equal(webhookEnv[EnvNames.publicWebhookBaseUrl], "https://hooks.example.com");
  });

  test("outputs give the custom-domain URL for every webhook kind", () => {
    for (const [path, kind] of Object.entries(WebhookRoutes)) {
      assert.equal(outputs[webhookUrlOutputKey(kind)].Value, `https://hooks.example.com${path}`);
    }
  });

  test("the domain uses the given certificate with TLS 1.2 and maps the $default stage at the root", () => {
    const [domain] = resourcesOfType(service, "AWS::ApiGatewayV2::DomainName");
    assert.ok(domain);
    assert.equal(domain[1].DomainName, "hooks.example.com");
    assert.deepEqual(domain[1].DomainNameConfigurations, [
      { CertificateArn: context.certificateArn, EndpointType: "REGIONAL", SecurityPolicy: "TLS_1_2" },
    ]);
    const mappings = Object.values(service.findResources("AWS::ApiGatewayV2::ApiMapping"));
    assert.equal(mappings.length, 1);
    const [mapping] = mappings;
    assert.ok(mapping);
    assert.equal(mapping.Properties.ApiMappingKey, undefined);
    assert.equal(mapping.Properties.Stage, "$default");
    assert.deepEqual(mapping.Properties.ApiId, ref(logicalIdOf(backbone.service.webhookApi.api)));
    assert.ok(
      mapping.DependsOn?.includes(logicalIdOf(backbone.service.webhookApi.stage)),
      "mapping must wait for the stage",
    );
  });

  test("the execute-api endpoint is disabled and the DNS target is an output", () => {
    assert.equal(
      resourceProperties(service, logicalIdOf(backbone.service.webhookApi.api)).DisableExecuteApiEndpoint,
      true,
    );
    assert.ok(outputs[OutputKeys.customDomainTarget]);
  });
});

describe("existing Twilio secret", () => {
  test("no secret is created", () => {
    assert.deepEqual(stateful.findResources("AWS::SecretsManager::Secret"), {});
  });

  for (const name of functionNames) {
    test(`${name} gets the given secret ARN and may read only that secret`, () => {
      const fn = backbone.service.functions[name];
      const env = functionEnvironment(service, logicalIdOf(fn.function), resolve);
      assert.equal(env[EnvNames.twilioSecretArn], context.twilioSecretArn);
      const statements = roleStatements(service, logicalIdOf(fn.role), resolve).filter((statement) =>
        statement.actions.some((action) => action.startsWith("secretsmanager:")),
      );
      assert.deepEqual(
        statements.flatMap((statement) => statement.resources),
        [context.twilioSecretArn],
      );
    });
  }
});

describe("operational settings", () => {
  test("alarm e-mails subscribe to the alarm topic", () => {
    const subscriptions = resourcesOfType(service, "AWS::SNS::Subscription");
    assert.deepEqual(
      subscriptions.map(([, subscription]) => [
        subscription.Protocol,
        subscription.Endpoint,
        subscription.TopicArn,
      ]),
      [["email", context.alarmEmail, ref(logicalIdOf(backbone.service.monitoring.topic))]],
    );
  });

  test("throttling comes from apiRateLimit and apiBurstLimit", () => {
    assert.deepEqual(
      resourceProperties(service, logicalIdOf(backbone.service.webhookApi.stage)).DefaultRouteSettings,
      {
        ThrottlingBurstLimit: 400,
        ThrottlingRateLimit: 200,
      },
    );
  });

  test("log retention comes from logRetentionDays", () => {
    for (const [, logGroup] of resourcesOfType(service, "AWS::Logs::LogGroup")) {
      assert.equal(logGroup.RetentionInDays, 90);
    }
  });
});

describe("function settings", () => {
  const envOf = (name: (typeof functionNames)[number]) =>
    functionEnvironment(service, logicalIdOf(backbone.service.functions[name].function), resolve);

  test("each function receives only the settings it reads", () => {
    assert.equal(envOf("closer").CLOSER_IDLE_MINUTES, "720");
    assert.equal(envOf("webhook").DEDUPE_TTL_SECONDS, "259200");
    for (const name of ["webhook", "compliance", "mirror"] as const) {
      assert.equal(envOf(name).CLOSER_IDLE_MINUTES, undefined, name);
    }
    assert.equal(envOf("closer").DEDUPE_TTL_SECONDS, undefined);
  });

  test("the tenant config reaches every function as TENANT_CONFIG JSON", () => {
    for (const name of functionNames) {
      assert.deepEqual(JSON.parse(String(envOf(name)[EnvNames.tenantConfig])), context.tenantConfig, name);
    }
  });
});

test("the fully optioned app still has no unacknowledged cdk-nag finding", () => {
  const reports: Array<{ violations?: unknown[] }> = Object(validationReport).pluginReports ?? [];
  assert.deepEqual(
    reports.flatMap((report) => report.violations ?? []),
    [],
  );
});

describe("malformed context", () => {
  const read = (values: Record<string, unknown>) => (key: string) => values[key];
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["a domain without a certificate", { domainName: "hooks.example.com" }, /must be set together/],
    [
      "a certificate that is not an ACM ARN",
      { domainName: "a.example.com", certificateArn: "arn:aws:iam::1:x" },
      /ACM/,
    ],
    [
      "a secret ARN from another service",
      { twilioSecretArn: "arn:aws:ssm:us-east-1:123456789012:parameter/x" },
      /Secrets Manager/,
    ],
    ["a retention CloudWatch does not offer", { logRetentionDays: 42 }, /retention period/],
    ["a non-numeric rate limit", { apiRateLimit: "fast" }, /positive whole number/],
    [
      "an unknown function setting",
      { functionSettings: { CLOSER_IDLE_MINUTS: 5 } },
      /unknown setting "CLOSER_IDLE_MINUTS"/,
    ],
    [
      "a nested function setting value",
      { functionSettings: { CLOSER_IDLE_MINUTES: { a: 1 } } },
      /string, number or boolean/,
    ],
    [
      "a tenant config too large for a Lambda environment",
      {
        tenantConfig: {
          senders: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`+1500555${i}`, "t"])),
        },
      },
      /4 KB/,
    ],
  ];
  for (const [label, values, message] of cases) {
    test(`rejects ${label}`, () => {
      assert.throws(() => settingsFromContext(read(values)), message);
    });
  }
});
