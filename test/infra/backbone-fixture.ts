// Synthesizes the backbone exactly as `infra/app.ts` does (same cdk.json context, same cdk-nag plugin),
// offline, against placeholder bundles in a temp dir: infra tests need neither AWS credentials nor a
// prior `npm run build`, and never depend on what the function code currently looks like.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { type Backbone, defineBackbone } from "../../infra/backbone.ts";
import { settingsFromContext } from "../../infra/settings.ts";
import { functionNames } from "../../lib/resources.ts";

export interface SynthesizedBackbone {
  readonly app: App;
  /** Placeholder bundles, reusable by a test that builds a second app. */
  readonly assetRoot: string;
  readonly backbone: Backbone;
  readonly stateful: Template;
  readonly service: Template;
  /** The policy validation report CDK writes next to the templates (cdk-nag findings live here). */
  readonly validationReport: unknown;
}

const repoRoot = join(import.meta.dirname, "..", "..");

const placeholderBundles = (root: string): void => {
  for (const name of functionNames) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, "index.mjs"), "export const handler = async () => ({});\n");
  }
};

/** The feature flags and settings `cdk` passes to infra/app.ts from cdk.json. */
export const cdkContext = (): Record<string, unknown> => {
  const cdkJson: { context?: Record<string, unknown> } = JSON.parse(
    readFileSync(join(repoRoot, "cdk.json"), "utf8"),
  );
  return cdkJson.context ?? {};
};

export interface SynthesisOptions {
  /**
   * Run CDK's built-in CloudFormation schema/lint validation (as `cdk synth` does). It costs about three
   * CPU-seconds per synth, so only the files asserting on the validation report turn it on; it never
   * changes a template.
   */
  readonly cloudFormationValidation?: boolean;
}

export const synthesizeBackbone = (
  context: Record<string, unknown> = {},
  options: SynthesisOptions = {},
): SynthesizedBackbone => {
  const workDir = mkdtempSync(join(tmpdir(), "backbone-infra-test-"));
  process.once("exit", () => rmSync(workDir, { recursive: true, force: true }));
  const assetRoot = join(workDir, "functions");
  mkdirSync(assetRoot);
  placeholderBundles(assetRoot);

  // Findings must not abort synthesis here: the cdk-nag test reads them from the report and names them,
  // while every other infra test still gets its template. `cdk synth` itself keeps failing on findings.
  const app = new App({
    context: { ...cdkContext(), "@aws-cdk/core:failSynthOnValidationErrors": false, ...context },
    outdir: join(workDir, "cdk.out"),
    builtinCloudFormationValidation: options.cloudFormationValidation ?? false,
  });
  const backbone = defineBackbone(app, {
    settings: settingsFromContext((key) => app.node.tryGetContext(key)),
    assetRoot,
  });
  const assembly = app.synth();
  const reportPath = join(assembly.directory, "validation-report.json");
  return {
    app,
    assetRoot,
    backbone,
    stateful: Template.fromStack(backbone.stateful),
    service: Template.fromStack(backbone.service),
    validationReport: JSON.parse(readFileSync(reportPath, "utf8")),
  };
};
