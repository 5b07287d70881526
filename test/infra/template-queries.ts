// Small queries over synthesized templates that the infra tests share: which IAM statements a function's
// role carries, what a function's environment is, and what a cross-stack reference points at in the
// stateful stack (so tests compare against `{ "Fn::GetAtt": ["DedupeTable", "Arn"] }`, not output hashes).
import { CfnElement, Stack } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";

export type Json = unknown;

export interface Statement {
  readonly actions: readonly string[];
  readonly resources: readonly Json[];
  readonly effect: string;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

export const logicalIdOf = (construct: IConstruct): string => {
  const element = construct instanceof CfnElement ? construct : construct.node.defaultChild;
  if (!(element instanceof CfnElement))
    throw new Error(`${construct.node.path} has no CloudFormation element`);
  // `logicalId` (not `getLogicalId`) so that `overrideLogicalId` pins are honoured.
  const logicalId: unknown = Stack.of(element).resolve(element.logicalId);
  if (typeof logicalId !== "string") throw new Error(`${construct.node.path} has an unresolvable logical ID`);
  return logicalId;
};

export const resourceProperties = (template: Template, logicalId: string): Record<string, unknown> => {
  const resource = template.toJSON().Resources?.[logicalId];
  if (!isRecord(resource) || !isRecord(resource.Properties)) throw new Error(`no resource ${logicalId}`);
  return resource.Properties;
};

export const resourcesOfType = (template: Template, type: string): Array<[string, Record<string, unknown>]> =>
  Object.entries(template.findResources(type)).map(([id, resource]) => [
    id,
    isRecord(resource) && isRecord(resource.Properties) ? resource.Properties : {},
  ]);

/**
 * Replaces every cross-stack reference (weak `Fn::GetStackOutput` or strong `Fn::ImportValue`) in `value`
 * with the producing stack's own expression, e.g. `{ Ref: "ConsentQueue" }`.
 */
export const crossStackResolver = (producer: Template) => {
  const outputs: Record<string, unknown> = producer.toJSON().Outputs ?? {};
  const byOutputName = (name: unknown): unknown => {
    const output = typeof name === "string" ? outputs[name] : undefined;
    if (!isRecord(output)) throw new Error(`producer has no output ${String(name)}`);
    return output.Value;
  };
  const byExportName = (name: unknown): unknown => {
    const output = Object.values(outputs).find(
      (candidate) => isRecord(candidate) && isRecord(candidate.Export) && candidate.Export.Name === name,
    );
    if (!isRecord(output)) throw new Error(`producer exports no ${String(name)}`);
    return output.Value;
  };
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!isRecord(value)) return value;
    const stackOutput = value["Fn::GetStackOutput"];
    if (isRecord(stackOutput)) return byOutputName(stackOutput.OutputName);
    if ("Fn::ImportValue" in value) return byExportName(value["Fn::ImportValue"]);
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, resolve(inner)]));
  };
  return resolve;
};

/** All statements of the policies attached to `roleLogicalId`, cross-stack references resolved. */
export const roleStatements = (
  template: Template,
  roleLogicalId: string,
  resolve: (value: unknown) => unknown,
): Statement[] =>
  resourcesOfType(template, "AWS::IAM::Policy")
    .filter(([, properties]) => JSON.stringify(properties.Roles) === JSON.stringify([{ Ref: roleLogicalId }]))
    .flatMap(([, properties]) => {
      const document = properties.PolicyDocument;
      return isRecord(document) ? asArray(document.Statement) : [];
    })
    .filter(isRecord)
    .map((statement) => ({
      actions: asArray(statement.Action).map(String),
      resources: asArray(resolve(statement.Resource)),
      effect: String(statement.Effect),
    }));

export const getAtt = (logicalId: string, attribute: string) => ({ "Fn::GetAtt": [logicalId, attribute] });
export const ref = (logicalId: string) => ({ Ref: logicalId });

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Actions granted on exactly `resource` (a resolved CloudFormation expression). */
export const actionsOn = (statements: readonly Statement[], resource: Json): string[] =>
  statements
    .filter(
      (statement) => statement.effect === "Allow" && statement.resources.some((r) => sameJson(r, resource)),
    )
    .flatMap((statement) => statement.actions)
    .sort();

/** Whether any statement mentions `logicalId` anywhere in its resources (ARN, `/index/…`, joins). */
export const mentions = (statements: readonly Statement[], logicalId: string): boolean =>
  statements.some((statement) =>
    statement.resources.some((resource) => JSON.stringify(resource).includes(`"${logicalId}"`)),
  );

export const functionEnvironment = (
  template: Template,
  functionLogicalId: string,
  resolve: (value: unknown) => unknown,
): Record<string, unknown> => {
  const environment = resourceProperties(template, functionLogicalId).Environment;
  const variables = isRecord(environment) ? resolve(environment.Variables) : undefined;
  return isRecord(variables) ? variables : {};
};
