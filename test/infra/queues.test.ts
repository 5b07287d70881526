// Work queues and their consumers: FIFO with FIFO DLQs, redrive after maxReceiveCount, visibility that
// covers six consumer timeouts, high-throughput FIFO, TLS-only access, and event source mappings that
// report partial batch failures under a concurrency cap.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Functions,
  type QueueName,
  Queues,
  queueNames,
  visibilityTimeoutSeconds,
} from "../../lib/resources.ts";
import { synthesizeBackbone } from "./backbone-fixture.ts";
import {
  crossStackResolver,
  getAtt,
  logicalIdOf,
  ref,
  resourceProperties,
  resourcesOfType,
} from "./template-queries.ts";

const { backbone, stateful, service } = synthesizeBackbone();
const resolve = crossStackResolver(stateful);
const queueOf = (name: QueueName) => resourceProperties(stateful, Queues[name].logicalId);
const deadLetterIdOf = (name: QueueName) => logicalIdOf(backbone.stateful.queues[name].deadLetterQueue);

const mappingFor = (name: QueueName) => {
  const mappings = resourcesOfType(service, "AWS::Lambda::EventSourceMapping").filter(
    ([, properties]) =>
      JSON.stringify(resolve(properties.EventSourceArn)) ===
      JSON.stringify(getAtt(Queues[name].logicalId, "Arn")),
  );
  assert.equal(mappings.length, 1, `expected one event source mapping on the ${name} queue`);
  const [mapping] = mappings;
  assert.ok(mapping);
  return mapping[1];
};

describe("work queues", () => {
  for (const name of queueNames) {
    test(`${name} and its DLQ are FIFO queues named *.fifo`, () => {
      for (const queue of [queueOf(name), resourceProperties(stateful, deadLetterIdOf(name))]) {
        assert.equal(queue.FifoQueue, true);
        assert.match(String(queue.QueueName), /^[A-Za-z0-9_-]{1,75}\.fifo$/);
      }
    });

    test(`${name} redrives to its own DLQ after maxReceiveCount (>= 5) receives`, () => {
      assert.ok(Queues[name].maxReceiveCount >= 5);
      assert.deepEqual(queueOf(name).RedrivePolicy, {
        deadLetterTargetArn: getAtt(deadLetterIdOf(name), "Arn"),
        maxReceiveCount: Queues[name].maxReceiveCount,
      });
    });

    test(`${name} visibility timeout covers six timeouts of its consumer`, () => {
      const consumer = Functions[Queues[name].consumer];
      const visibility = queueOf(name).VisibilityTimeout;
      assert.equal(visibility, visibilityTimeoutSeconds(name));
      assert.ok(Number(visibility) >= 6 * consumer.timeoutSeconds);
    });

    test(`${name} uses high-throughput FIFO (per message group)`, () => {
      assert.equal(queueOf(name).DeduplicationScope, "messageGroup");
      assert.equal(queueOf(name).FifoThroughputLimit, "perMessageGroupId");
    });

    test(`${name} and its DLQ deny every request not made over TLS`, () => {
      for (const queueId of [Queues[name].logicalId, deadLetterIdOf(name)]) {
        const policies = resourcesOfType(stateful, "AWS::SQS::QueuePolicy").filter(
          ([, properties]) => JSON.stringify(properties.Queues) === JSON.stringify([ref(queueId)]),
        );
        const statements = policies.flatMap(([, properties]) => JSON.stringify(properties.PolicyDocument));
        assert.ok(
          statements.some(
            (document) => document.includes('"aws:SecureTransport":"false"') && document.includes('"Deny"'),
          ),
          `${queueId} lacks an aws:SecureTransport deny`,
        );
      }
    });
  }
});

describe("queue consumers", () => {
  for (const name of queueNames) {
    const consumer = Queues[name].consumer;
    const trigger = Functions[consumer].trigger;

    test(`${name} is consumed by the ${consumer} function`, () => {
      assert.deepEqual(
        mappingFor(name).FunctionName,
        ref(logicalIdOf(backbone.service.functions[consumer].function)),
      );
    });

    test(`${name} consumer reports partial batch failures`, () => {
      assert.deepEqual(mappingFor(name).FunctionResponseTypes, ["ReportBatchItemFailures"]);
    });

    test(`${name} consumer has the batch size and maximum concurrency of its trigger`, () => {
      assert.equal(trigger.kind, "queue");
      if (trigger.kind !== "queue") return;
      const mapping = mappingFor(name);
      assert.equal(mapping.BatchSize, trigger.batchSize);
      assert.deepEqual(mapping.ScalingConfig, { MaximumConcurrency: trigger.maxConcurrency });
      assert.equal(mapping.MaximumBatchingWindowInSeconds, trigger.batchWindowSeconds || undefined);
    });
  }
});
