// The queue consumers' log lines: addresses masked (also inside Twilio's error text), one line per
// record with what became of it, failures classed, and metrics under the names and dimension the
// dashboard and alarms read (lib/metrics.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  HeldBackReason,
  logComplianceBatch,
  logMirrorBatch,
  redactAddresses,
} from "../../lib/adapters/record-log.ts";
import { telemetry } from "../../lib/adapters/telemetry.ts";
import { UngatedInboundError } from "../../lib/app/errors.ts";
import { InvalidEnvelopeError } from "../../lib/domain/queue-envelope.ts";
import { TwilioApiError } from "../../lib/domain/twilio-errors.ts";
import { emfDimension, MetricNames } from "../../lib/metrics.ts";
import { Queues } from "../../lib/resources.ts";

const capture = (functionName: string) => {
  const lines: Record<string, unknown>[] = [];
  const log = telemetry({
    functionName,
    namespace: "Test",
    sink: (line) => lines.push(JSON.parse(line)),
    now: () => 0,
  });
  return { log, lines };
};

const metricsOf = (line: Record<string, unknown> | undefined) => {
  const emf = Object(line?._aws).CloudWatchMetrics?.[0];
  return {
    dimensions: emf?.Dimensions,
    names: (emf?.Metrics ?? []).map((metric: { Name: string }) => metric.Name),
  };
};

test("phone numbers quoted in error text are masked, with or without a channel prefix", () => {
  assert.equal(
    redactAddresses("The 'To' number +14155550123 is not a valid phone number."),
    "The 'To' number +1415•••••23 is not a valid phone number.",
  );
  assert.equal(redactAddresses("whatsapp:+447700900123 opted out"), "whatsapp:+4477••••••23 opted out");
  assert.equal(redactAddresses("error 21211 (status 400)"), "error 21211 (status 400)");
});

test("metrics are published under the Function dimension with the function's name", () => {
  const { log, lines } = capture("mirror");
  log.emit({}, [{ name: MetricNames.messagesMirrored, value: 2 }]);
  assert.deepEqual(metricsOf(lines[0]).dimensions, [[emfDimension]]);
  assert.equal(lines[0]?.[emfDimension], "mirror");
  assert.equal(lines[0]?.[MetricNames.messagesMirrored], 2);
});

describe("mirror batch", () => {
  test("one line per record, failures with their masked reason and class, then the batch metrics", () => {
    const { log, lines } = capture("mirror");
    logMirrorBatch(log, {
      batchItemFailures: [{ itemIdentifier: "m2" }, { itemIdentifier: "m3" }],
      records: [
        {
          messageId: "m1",
          eventId: "e1",
          ok: true,
          result: { outcome: "mirrored", tenantId: "acme", conversationSid: "CH1", address: "+14155550123" },
        },
        {
          messageId: "m2",
          eventId: "e2",
          ok: false,
          skipped: false,
          error: new TwilioApiError("The 'To' number +14155550123 is not valid", {
            status: 400,
            code: 21211,
          }),
        },
        { messageId: "m3", ok: false, skipped: true, error: new UngatedInboundError("x") },
      ],
      mirrored: 1,
      notPosted: 0,
      failed: 2,
    });
    const [ok, failed, held, batch] = lines;
    assert.deepEqual(
      [ok?.outcome, ok?.tenantId, ok?.conversationSid, ok?.address],
      ["mirrored", "acme", "CH1", "+1415•••••23"],
    );
    assert.deepEqual(
      [
        failed?.level,
        failed?.error,
        failed?.reason,
        failed?.twilioCode,
        failed?.twilioStatus,
        failed?.permanent,
      ],
      ["error", "TwilioApiError", "The 'To' number +1415•••••23 is not valid", 21211, 400, true],
    );
    assert.deepEqual(
      [held?.skipped, held?.reason, "permanent" in Object(held)],
      [true, HeldBackReason, false],
    );
    assert.equal(batch?.records, 3);
    assert.deepEqual(metricsOf(batch).names, [
      MetricNames.messagesMirrored,
      MetricNames.outboundNotPosted,
      MetricNames.mirrorFailures,
    ]);
    assert.deepEqual([batch?.MessagesMirrored, batch?.OutboundNotPosted, batch?.MirrorFailures], [1, 0, 2]);
  });
});

describe("compliance batch", () => {
  const failure = (error: unknown, receiveCount: number, skipped = false) => ({
    messageId: `m${receiveCount}`,
    ok: false as const,
    skipped,
    error,
    receiveCount,
  });

  test("a malformed record is poison, and its last delivery says it goes to the DLQ", () => {
    const { log, lines } = capture("compliance");
    const last = Queues.consent.maxReceiveCount;
    logComplianceBatch(log, "req", {
      batchItemFailures: [],
      records: [
        failure(new InvalidEnvelopeError("bad JSON"), 1),
        failure(new InvalidEnvelopeError("bad"), last),
      ],
    });
    assert.deepEqual(
      lines.map((line) => [line.msg, line.level, line.failureClass, line.nextStop]),
      [
        ["compliance-record-failed", "warn", "poison", "redelivery"],
        ["compliance-record-failed", "warn", "poison", "dead-letter-queue"],
      ],
    );
    assert.equal(lines[0]?.ComplianceFailures, 1);
  });

  test("rejected credentials are an error; a held-back record counts no failure", () => {
    const { log, lines } = capture("compliance");
    logComplianceBatch(log, "req", {
      batchItemFailures: [],
      records: [
        failure(new TwilioApiError("Authenticate", { status: 401, code: 20003 }), 1),
        failure(new TwilioApiError("Authenticate", { status: 401, code: 20003 }), 1, true),
      ],
    });
    const [failed, held] = lines;
    assert.deepEqual(
      [failed?.level, failed?.failureClass, failed?.twilioCode, failed?.ComplianceFailures],
      ["error", "configuration", 20003, 1],
    );
    assert.deepEqual(
      [held?.msg, held?.reason, held?.ComplianceFailures],
      ["compliance-record-held-back", HeldBackReason, 0],
    );
  });

  test("a processed record logs its outcome with the address masked and counts its actions", () => {
    const { log, lines } = capture("compliance");
    logComplianceBatch(log, "req", {
      batchItemFailures: [],
      records: [
        {
          messageId: "m1",
          ok: true,
          receiveCount: 1,
          report: { outcome: "opted-out", channel: "sms", address: "+14155550123", actions: ["suppressed"] },
        },
      ],
    });
    assert.deepEqual(
      [lines[0]?.msg, lines[0]?.outcome, lines[0]?.address, lines[0]?.ComplianceActions],
      ["compliance-record", "opted-out", "+1415•••••23", 1],
    );
    assert.deepEqual(metricsOf(lines[0]).names, [MetricNames.complianceActions]);
  });
});
