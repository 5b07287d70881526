// Errors raised while assembling the CDK app: bad context values and missing build artifacts. They stop
// `cdk synth` before anything reaches CloudFormation.

export class ContextError extends Error {
  override name = "ContextError";
}

export class MissingAssetError extends Error {
  override name = "MissingAssetError";
}
