// The Secrets Manager secret holding the Twilio credentials. Either created here with a generated
// placeholder (the operator fills it with `aws secretsmanager put-secret-value`) or imported by ARN; only
// the ARN ever reaches a template or an environment variable.
//
// Secret value (JSON):
//   { "accountSid": "AC…", "authToken": "…", "authTokenSecondary"?: "…",
//     "subaccountAuthTokens"?: { "AC…": "…" }, "apiKeySid": "SK…", "apiKeySecret": "…" }
import { RemovalPolicy, Validations } from "aws-cdk-lib";
import { type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";

export interface TwilioSecretProps {
  /** Use an existing secret instead of creating one. */
  readonly existingSecretArn?: string;
}

// A complete ARN ends in the 6-character suffix Secrets Manager appends to the name.
const completeArnSuffix = /-[A-Za-z0-9]{6}$/;

export class TwilioSecret extends Construct {
  readonly secret: ISecret;

  constructor(scope: Construct, id: string, props: TwilioSecretProps = {}) {
    super(scope, id);
    if (props.existingSecretArn) {
      this.secret = completeArnSuffix.test(props.existingSecretArn)
        ? Secret.fromSecretCompleteArn(this, "Imported", props.existingSecretArn)
        : Secret.fromSecretPartialArn(this, "Imported", props.existingSecretArn);
      return;
    }
    const secret = new Secret(this, "Secret", {
      description:
        "Twilio credentials for the Conversations backbone: accountSid, authToken, authTokenSecondary?, subaccountAuthTokens?, apiKeySid, apiKeySecret",
      // The random authToken is a fail-closed placeholder: no real Twilio request verifies against it
      // until the operator writes the real values.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ accountSid: "", apiKeySid: "", apiKeySecret: "" }),
        generateStringKey: "authToken",
        excludePunctuation: true,
        passwordLength: 32,
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(secret).acknowledge({
      id: "AwsSolutions-SMG4",
      reason:
        "Twilio auth tokens are rotated in the Twilio Console (promote the secondary token), not by a Secrets Manager rotation Lambda; the runbook updates this secret with put-secret-value and the webhook accepts authTokenSecondary during the switch.",
    });
    this.secret = secret;
  }
}
