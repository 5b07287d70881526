// Composition root of the stale-conversation closer, invoked by EventBridge Scheduler (empty payload) or
// on demand (`{ "dryRun": true, "cursor": "…", "maxCloses": 100 }`): reads config once, builds adapters at
// module scope, runs one closer pass and returns its summary, after logging it as one structured line
// with the run's metrics (and, for dry runs, the SIDs that would be closed).
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoCloserCursorStore } from "../../lib/adapters/closer-cursor-store.ts";
import { twilioConversationCloser } from "../../lib/adapters/closer-twilio.ts";
import { dynamoConversationRegistry } from "../../lib/adapters/conversation-registry.ts";
import { telemetry } from "../../lib/adapters/telemetry.ts";
import { twilioClientProvider } from "../../lib/adapters/twilio-client.ts";
import { type CloserSummary, parseCloserRequest, runCloser } from "../../lib/app/closer.ts";
import { CloserRunAbortedError } from "../../lib/app/errors.ts";
import { systemClock, tokenBucket } from "../../lib/app/rate-limiter.ts";
import { parseCloserConfig } from "../../lib/config/closer-config.ts";
import { processEnv } from "../../lib/config/env.ts";
import { parseTwilioRestConfig } from "../../lib/config/twilio-config.ts";
import { MetricNames } from "../../lib/metrics.ts";

const env = processEnv();
const config = parseCloserConfig(env);
const dynamodb = new DynamoDBClient({});
const registry = dynamoConversationRegistry(dynamodb, config.tableName);
const twilio = twilioConversationCloser(twilioClientProvider(parseTwilioRestConfig(env)));
const cursors = dynamoCloserCursorStore(dynamodb, config.tableName);
const log = telemetry({ functionName: "closer", namespace: config.metricsNamespace });

/** SIDs per dry-run list line: keeps each line far below CloudWatch's 256 KB event limit. */
const SidsPerLine = 100;

export const handler = async (
  event: unknown,
  context: { getRemainingTimeInMillis(): number },
): Promise<CloserSummary> => {
  const request = parseCloserRequest(event);
  const summary = await runCloser(
    {
      registry,
      twilio,
      cursors,
      // A fresh bucket per run: no burst carried over from an earlier warm invocation.
      limiter: tokenBucket({
        ratePerSecond: config.settings.maxMutationsPerSecond,
        clock: systemClock,
        adaptive: { floorPerSecond: 1 },
      }),
      clock: systemClock,
      settings: config.settings,
    },
    request,
    { remainingMs: () => context.getRemainingTimeInMillis() },
  );

  const { wouldClose, ...fields } = summary;
  for (let start = 0; start < wouldClose.length; start += SidsPerLine) {
    log.emit({
      message: "closer dry run: would close",
      conversationSids: wouldClose.slice(start, start + SidsPerLine),
    });
  }
  log.emit(
    { message: "closer run", ...fields, wouldClose: wouldClose.length },
    // Dry runs emit no metrics: the alarms on closes and failures must only see real runs.
    summary.dryRun
      ? []
      : [
          { name: MetricNames.conversationsClosed, value: summary.closed },
          { name: MetricNames.conversationsSkipped, value: summary.skipped },
          { name: MetricNames.closeFailures, value: summary.failed },
        ],
  );
  // Fail the invocation (Lambda Errors alarm, Scheduler retry) when retrying row by row cannot help.
  if (summary.stoppedBy === "aborted") {
    throw new CloserRunAbortedError(`closer run aborted: ${summary.abortReason ?? "unknown reason"}`);
  }
  return summary;
};
