// Assembles the whole backbone into an App: the two stacks plus the cdk-nag AwsSolutions checks. Both
// `infra/app.ts` and the infra tests call this, so the tests synthesize exactly what `cdk deploy` does.
import { type App, type Environment, Tags, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { BackboneSettings } from "./settings.ts";
import { ServiceStack } from "./stacks/service-stack.ts";
import { StatefulStack } from "./stacks/stateful-stack.ts";

export interface BackboneProps {
  readonly settings: BackboneSettings;
  /** Directory with `<function>/index.mjs` bundles, normally `dist/functions`. */
  readonly assetRoot: string;
  readonly env?: Environment;
}

export interface Backbone {
  readonly stateful: StatefulStack;
  readonly service: ServiceStack;
}

export const defineBackbone = (app: App, props: BackboneProps): Backbone => {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const { settings, env } = props;
  const stateful = new StatefulStack(app, `${settings.stackPrefix}-Stateful`, {
    env,
    description: "Twilio Conversations backbone: tables, work queues and the Twilio secret (retained data)",
    twilioSecretArn: settings.twilioSecretArn,
  });
  const service = new ServiceStack(app, `${settings.stackPrefix}-Service`, {
    env,
    description: "Twilio Conversations backbone: webhook API, functions, closer schedule, alarms, dashboard",
    stateful,
    assetRoot: props.assetRoot,
    settings,
  });
  // Resource tags, for cost allocation by application.
  Tags.of(app).add("Application", "twilio-conversations-backbone");
  return { stateful, service };
};
