// The webhook HTTP API on its execute-api endpoint: one POST route per WebhookRoutes entry into the
// webhook function (payload 2.0), a throttled $default stage with access logs, and outputs that give
// the exact URL to paste into Twilio for each webhook kind.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { defaultSettings } from "../../infra/settings.ts";
import { OutputKeys, webhookUrlOutputKey } from "../../infra/stack-outputs.ts";
import { type WebhookRoutePath, WebhookRoutes } from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import { getAtt, logicalIdOf, ref, resourceProperties, resourcesOfType } from "./template-queries.ts";

const { backbone, service } = synthesizeBackbone();
const apiId = logicalIdOf(backbone.service.webhookApi.api);
const stage = resourceProperties(service, logicalIdOf(backbone.service.webhookApi.stage));
const webhookFunctionId = logicalIdOf(backbone.service.functions.webhook.function);
const routePaths = Object.keys(WebhookRoutes).filter(
  (path): path is WebhookRoutePath => path in WebhookRoutes,
);
const executeApiOrigin = [
  "https://",
  ref(apiId),
  ".execute-api.",
  ref("AWS::Region"),
  ".",
  ref("AWS::URLSuffix"),
];

const integrations = resourcesOfType(service, "AWS::ApiGatewayV2::Integration");
const routes = resourcesOfType(service, "AWS::ApiGatewayV2::Route");

describe("webhook routes", () => {
  test("the API has exactly one POST route per webhook path and no catch-all", () => {
    assert.deepEqual(
      routes.map(([, route]) => route.RouteKey).sort(),
      routePaths.map((path) => `POST ${path}`).sort(),
    );
  });

  test("every route integrates the webhook function with payload format 2.0", () => {
    for (const [, route] of routes) {
      const target = JSON.stringify(route.Target);
      const integration = integrations.find(([id]) => target.includes(`"${id}"`));
      assert.ok(integration, `route ${String(route.RouteKey)} has no integration`);
      assert.equal(integration[1].IntegrationType, "AWS_PROXY");
      assert.equal(integration[1].PayloadFormatVersion, "2.0");
      assert.deepEqual(integration[1].IntegrationUri, getAtt(webhookFunctionId, "Arn"));
    }
  });

  test("API Gateway may invoke the webhook function only for the webhook routes of this API", () => {
    const permissions = resourcesOfType(service, "AWS::Lambda::Permission").filter(
      ([, permission]) =>
        JSON.stringify(permission.FunctionName) === JSON.stringify(getAtt(webhookFunctionId, "Arn")),
    );
    const sourceArns = permissions.map(([, permission]) => JSON.stringify(permission.SourceArn));
    for (const path of routePaths) {
      assert.ok(
        sourceArns.some((arn) => arn.includes(`"${apiId}"`) && arn.includes(`/*/*${path}"`)),
        `no invoke permission scoped to ${path}`,
      );
    }
    assert.equal(permissions.length, routePaths.length);
  });
});

describe("default stage", () => {
  test("is the auto-deployed $default stage, so URLs carry no stage prefix", () => {
    assert.equal(stage.StageName, "$default");
    assert.equal(stage.AutoDeploy, true);
  });

  test("throttles every route to the configured rate and burst", () => {
    assert.deepEqual(stage.DefaultRouteSettings, {
      ThrottlingBurstLimit: defaultSettings.apiThrottle.burstLimit,
      ThrottlingRateLimit: defaultSettings.apiThrottle.rateLimit,
    });
  });

  test("writes JSON access logs with request id, route and status to a log group with retention", () => {
    const accessLogs = logicalIdOf(backbone.service.webhookApi.accessLogs);
    const settings = stage.AccessLogSettings;
    assert.ok(settings && typeof settings === "object");
    assert.deepEqual(Reflect.get(settings, "DestinationArn"), getAtt(accessLogs, "Arn"));
    const format = JSON.parse(String(Reflect.get(settings, "Format")));
    assert.equal(format.requestId, "$context.requestId");
    assert.equal(format.routeKey, "$context.routeKey");
    assert.equal(format.status, "$context.status");
    assert.equal(resourceProperties(service, accessLogs).RetentionInDays, defaultSettings.logRetention);
  });
});

describe("outputs", () => {
  const outputs = service.toJSON().Outputs;

  for (const path of routePaths) {
    const key = webhookUrlOutputKey(WebhookRoutes[path]);
    test(`${key} is the execute-api origin followed by ${path}`, () => {
      assert.deepEqual(outputs[key].Value, { "Fn::Join": ["", [...executeApiOrigin, path]] });
    });
  }

  test("WebhookBaseUrl equals the PUBLIC_WEBHOOK_BASE_URL the function verifies signatures against", () => {
    const env = resourceProperties(service, webhookFunctionId).Environment;
    assert.deepEqual(outputs[OutputKeys.webhookBaseUrl].Value, { "Fn::Join": ["", executeApiOrigin] });
    assert.deepEqual(Reflect.get(Reflect.get(Object(env), "Variables"), "PUBLIC_WEBHOOK_BASE_URL"), {
      "Fn::Join": ["", executeApiOrigin],
    });
  });

  test("the execute-api endpoint stays enabled when no custom domain is configured", () => {
    assert.notEqual(resourceProperties(service, apiId).DisableExecuteApiEndpoint, true);
    assert.equal(outputs[OutputKeys.customDomainTarget], undefined);
  });
});
