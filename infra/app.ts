// CDK entry point (`cdk.json` → `node infra/app.ts`). Reads context into settings and deploys the prebuilt
// bundles from dist/functions (run `npm run build` first).
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { defineBackbone } from "./backbone.ts";
import { settingsFromContext } from "./settings.ts";

const app = new App();
defineBackbone(app, {
  settings: settingsFromContext((key) => app.node.tryGetContext(key)),
  assetRoot: join(import.meta.dirname, "..", "dist", "functions"),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
