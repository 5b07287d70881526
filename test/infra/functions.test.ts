// The four functions: prebuilt bundles on nodejs24.x/arm64 with the sizes from `Functions`, their own
// log groups with retention, and an environment identical to `functionEnv` — the function the local
// stack uses — so deployed and local configuration cannot drift.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { defaultSettings } from "../../infra/settings.ts";
import { EnvNames, queueEnvName, tableEnvName } from "../../lib/config/env.ts";
import { defaultMetricsNamespace, functionEnv } from "../../lib/function-env.ts";
import { Functions, functionNames, Queues, queueNames, Tables, tableNames } from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import {
  crossStackResolver,
  functionEnvironment,
  logicalIdOf,
  ref,
  resourceProperties,
} from "./template-queries.ts";

const { backbone, stateful, service } = synthesizeBackbone();
const resolve = crossStackResolver(stateful);
const functionId = (name: keyof typeof Functions) => logicalIdOf(backbone.service.functions[name].function);
const envOf = (name: keyof typeof Functions) => functionEnvironment(service, functionId(name), resolve);

describe("function runtime", () => {
  for (const name of functionNames) {
    test(`${name} runs the prebuilt bundle's index.handler on nodejs24.x arm64`, () => {
      const properties = resourceProperties(service, functionId(name));
      assert.equal(properties.Runtime, "nodejs24.x");
      assert.deepEqual(properties.Architectures, ["arm64"]);
      assert.equal(properties.Handler, "index.handler");
    });

    test(`${name} has the memory and timeout of its Functions entry`, () => {
      const properties = resourceProperties(service, functionId(name));
      assert.equal(properties.MemorySize, Functions[name].memoryMb);
      assert.equal(properties.Timeout, Functions[name].timeoutSeconds);
    });

    test(`${name} logs to its own log group with a finite retention`, () => {
      const logGroupId = logicalIdOf(backbone.service.functions[name].logGroup);
      assert.deepEqual(resourceProperties(service, functionId(name)).LoggingConfig, {
        LogGroup: ref(logGroupId),
      });
      assert.equal(resourceProperties(service, logGroupId).RetentionInDays, defaultSettings.logRetention);
    });
  }
});

describe("function environment", () => {
  for (const name of functionNames) {
    test(`${name} gets exactly the variables functionEnv computes for it`, () => {
      const env = envOf(name);
      const expected = functionEnv(name, {
        tableNames: { dedupe: "", consent: "", conversations: "" },
        queueUrls: { consent: "", mirror: "" },
        twilioSecretArn: "",
        publicWebhookBaseUrl: "",
      });
      assert.deepEqual(Object.keys(env).sort(), Object.keys(expected).sort());
    });

    test(`${name} table and queue variables point at the matching stateful resources`, () => {
      const env = envOf(name);
      for (const table of tableNames) {
        const key = tableEnvName(table);
        if (key in env) assert.deepEqual(env[key], ref(Tables[table].logicalId));
      }
      for (const queue of queueNames) {
        const key = queueEnvName(queue);
        if (key in env) assert.deepEqual(env[key], ref(Queues[queue].logicalId));
      }
    });

    test(`${name} carries only the ARN of the Twilio secret, never a credential`, () => {
      const env = envOf(name);
      assert.deepEqual(env[EnvNames.twilioSecretArn], ref(logicalIdOf(backbone.stateful.twilioSecret)));
      for (const credential of [
        EnvNames.twilioAuthToken,
        EnvNames.twilioAuthTokenSecondary,
        EnvNames.twilioSubaccountAuthTokens,
        EnvNames.twilioApiKeySecret,
        EnvNames.twilioApiKeySid,
        EnvNames.twilioAccountSid,
      ]) {
        assert.equal(credential in env, false, `${credential} must come from the secret at runtime`);
      }
    });

    test(`${name} emits metrics to the namespace the alarms watch`, () => {
      assert.equal(envOf(name)[EnvNames.metricsNamespace], defaultMetricsNamespace);
    });
  }

  test("only the webhook function receives PUBLIC_WEBHOOK_BASE_URL, set to the API's execute-api origin", () => {
    const apiId = logicalIdOf(backbone.service.webhookApi.api);
    assert.deepEqual(envOf("webhook")[EnvNames.publicWebhookBaseUrl], {
      "Fn::Join": [
        "",
        ["https://", ref(apiId), ".execute-api.", ref("AWS::Region"), ".", ref("AWS::URLSuffix")],
      ],
    });
    for (const name of functionNames.filter((n) => n !== "webhook")) {
      assert.equal(EnvNames.publicWebhookBaseUrl in envOf(name), false);
    }
  });

  test("the generated secret placeholder holds no credential in the template", () => {
    const secret = resourceProperties(stateful, logicalIdOf(backbone.stateful.twilioSecret));
    assert.equal(secret.SecretString, undefined);
    assert.deepEqual(secret.GenerateSecretString, {
      SecretStringTemplate: JSON.stringify({ accountSid: "", apiKeySid: "", apiKeySecret: "" }),
      GenerateStringKey: "authToken",
      ExcludePunctuation: true,
      PasswordLength: 32,
    });
  });
});
