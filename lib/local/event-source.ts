// An SQS event source mapping, run the way Lambda runs one with ReportBatchItemFailures:
//
// - one poller long-polls the queue and fills a batch up to `batchSize`, waiting at most
//   `batchWindowSeconds` after the first message (window 0: invoke with what the first receive returned);
// - up to `maxConcurrency` batches are in flight; the poller stops receiving while all slots are busy, so
//   it never holds messages invisible that no invocation could take;
// - FIFO: SQS itself hands out no message of a group while another of that group is in flight, so a group
//   is never in two batches at once;
// - the response decides what is deleted (`batchVerdict`): records that succeeded are deleted, failed ones
//   are left alone and come back when their visibility timeout expires, with ApproximateReceiveCount
//   counting every receive, until the queue's redrive policy moves them to the DLQ (SQS does that, not
//   the mapping). A processed record whose delete fails (SQS unreachable) comes back the same way, so
//   the consumer sees it again; the batch is reported all the same, naming it in `deleteFailed`. Nothing
//   here shortens the visibility timeout of a failed record: the stack lowers the queue's
//   VisibilityTimeout instead when asked to, so retries stay exactly as counted and timed as SQS's.
//
// Not modelled: Lambda's back-off of the mapping's concurrency after function errors, and the 6 MB
// payload cap of a batch.
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSEvent, SQSMessageAttributes, SQSRecord, SQSRecordAttributes } from "aws-lambda";
import type { Invocation } from "./lambda-runner.ts";

export type BatchVerdict =
  | { readonly kind: "all-succeeded" }
  | { readonly kind: "partial"; readonly failed: ReadonlySet<string> }
  | { readonly kind: "all-failed"; readonly reason: string };

export type BatchReport = {
  readonly invocation: Invocation;
  readonly records: readonly SQSRecord[];
  readonly verdict: BatchVerdict;
  /** Message ids deleted from the queue. */
  readonly deleted: readonly string[];
  /** Message ids left to reappear after the visibility timeout (including `deleteFailed`). */
  readonly retained: readonly string[];
  /**
   * Message ids the function succeeded on but whose delete failed (SQS unreachable, or the entry
   * refused): as on AWS they reappear after the visibility timeout and are processed again.
   */
  readonly deleteFailed: readonly string[];
};

export type EventSourceOptions = {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  readonly batchSize: number;
  readonly batchWindowSeconds: number;
  readonly maxConcurrency: number;
  readonly invoke: (event: SQSEvent) => Promise<Invocation>;
  readonly onBatch?: (report: BatchReport) => void;
  /**
   * A receive or delete call failed. After a failed receive the poller retries in a second; after a
   * failed delete the batch is still reported, with the records in `deleteFailed`.
   */
  readonly onError?: (error: unknown) => void;
};

export type EventSource = {
  /**
   * Like the mapping's `Enabled` flag: disabled, nothing is received (batches in flight finish).
   * Resolves once the setting is in effect — for `false`, when the poller has gone idle.
   */
  setEnabled(enabled: boolean): Promise<void>;
  /** Stops polling, then waits for the batches in flight to be settled. */
  stop(): Promise<void>;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * What Lambda makes of a function's answer to an SQS batch (AWS "Reporting batch item failures"): an
 * empty or null `batchItemFailures`, or an empty or null response, is full success; a function error or
 * timeout, an `itemIdentifier` that is empty, null, misnamed or not a message id of the batch, or a
 * response that is not an object (we read "invalid JSON response" this way) fails the whole batch.
 */
export const batchVerdict = (messageIds: readonly string[], invocation: Invocation): BatchVerdict => {
  const { result } = invocation;
  if (result.status !== "ok") {
    return { kind: "all-failed", reason: `${result.error.errorType}: ${result.error.errorMessage}` };
  }
  const response = result.payload;
  if (response === null || response === undefined) return { kind: "all-succeeded" };
  if (!isRecord(response))
    return { kind: "all-failed", reason: "the response is not a batch response object" };
  const failures = response.batchItemFailures;
  if (failures === null || failures === undefined) return { kind: "all-succeeded" };
  if (!Array.isArray(failures)) return { kind: "all-failed", reason: "batchItemFailures is not a list" };
  if (failures.length === 0) return { kind: "all-succeeded" };
  const known = new Set(messageIds);
  const failed = new Set<string>();
  for (const failure of failures) {
    const identifier = isRecord(failure) ? failure.itemIdentifier : undefined;
    if (typeof identifier !== "string" || identifier === "") {
      return { kind: "all-failed", reason: "a batchItemFailures entry has no itemIdentifier" };
    }
    if (!known.has(identifier)) {
      return { kind: "all-failed", reason: `itemIdentifier ${identifier} is not a message of this batch` };
    }
    failed.add(identifier);
  }
  return { kind: "partial", failed };
};

const toMessageAttributes = (
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes => {
  const mapped: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    mapped[name] = {
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined
        ? {}
        : { binaryValue: Buffer.from(value.BinaryValue).toString("base64") }),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((item) => Buffer.from(item).toString("base64")),
      dataType: value.DataType ?? "String",
    };
  }
  return mapped;
};

/** The record Lambda builds from a received message, attributes in the order Lambda lists them. */
export const toSqsRecord = (message: Message, queueArn: string, region: string): SQSRecord => {
  const system = message.Attributes ?? {};
  const attributes: SQSRecordAttributes = {
    ApproximateReceiveCount: system.ApproximateReceiveCount ?? "1",
    SentTimestamp: system.SentTimestamp ?? String(Date.now()),
    ...(system.SequenceNumber === undefined ? {} : { SequenceNumber: system.SequenceNumber }),
    ...(system.MessageGroupId === undefined ? {} : { MessageGroupId: system.MessageGroupId }),
    SenderId: system.SenderId ?? "000000000000",
    ...(system.MessageDeduplicationId === undefined
      ? {}
      : { MessageDeduplicationId: system.MessageDeduplicationId }),
    ApproximateFirstReceiveTimestamp: system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
  };
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes,
    messageAttributes: toMessageAttributes(message.MessageAttributes),
    md5OfBody: message.MD5OfBody ?? "",
    ...(message.MD5OfMessageAttributes === undefined
      ? {}
      : { md5OfMessageAttributes: message.MD5OfMessageAttributes }),
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** SQS accepts WaitTimeSeconds 0–20 and at most 10 messages per receive. */
const maxWaitSeconds = 20;
const maxReceive = 10;
/**
 * Lambda's pollers wait 20 s; ours waits 1 s per receive so that disabling the mapping takes effect
 * within a second without abandoning a receive in flight (an abandoned long poll would still take a
 * message, hide it and count a receive nobody saw). Locally the extra empty receives cost nothing.
 */
const pollWaitSeconds = 1;

export const startEventSource = (options: EventSourceOptions): EventSource => {
  const abort = new AbortController();
  const inFlight = new Set<Promise<void>>();
  let wake: () => void = () => undefined;
  let enabled = true;
  let enable: () => void = () => undefined;
  const idle: (() => void)[] = [];

  const receive = async (max: number, waitSeconds: number): Promise<Message[]> => {
    const response = await options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.queueUrl,
        MaxNumberOfMessages: Math.min(max, maxReceive),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
      { abortSignal: abort.signal },
    );
    return response.Messages ?? [];
  };

  const collect = async (): Promise<Message[]> => {
    const batch = await receive(options.batchSize, pollWaitSeconds);
    if (batch.length === 0) return batch;
    const windowEnds = Date.now() + options.batchWindowSeconds * 1000;
    while (batch.length < options.batchSize && !abort.signal.aborted) {
      const remaining = windowEnds - Date.now();
      if (remaining <= 0) break;
      const waitSeconds = Math.min(maxWaitSeconds, Math.floor(remaining / 1000));
      const more = await receive(options.batchSize - batch.length, waitSeconds);
      batch.push(...more);
      if (more.length === 0 && waitSeconds === 0) await sleep(Math.min(100, remaining));
    }
    return batch;
  };

  /** Deletes `records`; resolves with the message ids that are still on the queue. */
  const remove = async (records: readonly SQSRecord[]): Promise<Set<string>> => {
    if (records.length === 0) return new Set();
    try {
      const response = await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: records.map((record, index) => ({
            Id: String(index),
            ReceiptHandle: record.receiptHandle,
          })),
        }),
      );
      const failed = new Set<string>();
      for (const failure of response.Failed ?? []) {
        const messageId = records[Number(failure.Id)]?.messageId ?? `entry ${failure.Id}`;
        failed.add(messageId);
        options.onError?.(
          new Error(
            `could not delete processed message ${messageId} (it will be delivered again): ${failure.Code} ${failure.Message}`,
          ),
        );
      }
      return failed;
    } catch (error) {
      // The function ran, so the batch is still reported; the records stay invisible until their
      // visibility timeout and are then delivered again, as on AWS when a poller's delete fails.
      options.onError?.(
        new Error(
          `could not delete processed message(s) ${records.map((record) => record.messageId).join(", ")} (they will be delivered again): ${describe(error)}`,
          { cause: error },
        ),
      );
      return new Set(records.map((record) => record.messageId));
    }
  };

  const settle = async (records: readonly SQSRecord[], invocation: Invocation): Promise<void> => {
    const messageIds = records.map((record) => record.messageId);
    const verdict = batchVerdict(messageIds, invocation);
    const succeeded =
      verdict.kind === "all-succeeded"
        ? records
        : verdict.kind === "partial"
          ? records.filter((record) => !verdict.failed.has(record.messageId))
          : [];
    const undeleted = await remove(succeeded);
    const deleted = new Set(succeeded.map((record) => record.messageId).filter((id) => !undeleted.has(id)));
    options.onBatch?.({
      invocation,
      records,
      verdict,
      deleted: [...deleted],
      retained: messageIds.filter((id) => !deleted.has(id)),
      deleteFailed: messageIds.filter((id) => undeleted.has(id)),
    });
  };

  const dispatch = (messages: readonly Message[]): void => {
    const records = messages.map((message) => toSqsRecord(message, options.queueArn, options.region));
    const task = (async () => {
      const invocation = await options.invoke({ Records: [...records] });
      await settle(records, invocation);
    })()
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => {
        inFlight.delete(task);
        wake();
      });
    inFlight.add(task);
  };

  const slotFree = (): Promise<void> =>
    inFlight.size < options.maxConcurrency
      ? Promise.resolve()
      : new Promise((resolve) => {
          wake = resolve;
        });

  const whileDisabled = async (): Promise<void> => {
    for (const resolve of idle.splice(0)) resolve();
    await new Promise<void>((resolve) => {
      enable = resolve;
    });
  };

  const poll = (async () => {
    while (!abort.signal.aborted) {
      if (!enabled) {
        await whileDisabled();
        continue;
      }
      await slotFree();
      if (abort.signal.aborted) break;
      if (!enabled) continue;
      try {
        const messages = await collect();
        if (messages.length > 0 && !abort.signal.aborted) dispatch(messages);
      } catch (error) {
        if (abort.signal.aborted) break;
        options.onError?.(error);
        await sleep(1000);
      }
    }
  })();

  return {
    setEnabled: async (value) => {
      enabled = value;
      if (value) {
        enable();
        return;
      }
      await new Promise<void>((resolve) => {
        idle.push(resolve);
        wake();
      });
    },
    stop: async () => {
      abort.abort();
      wake();
      enable();
      await poll;
      for (const resolve of idle.splice(0)) resolve();
      await Promise.all([...inFlight]);
    },
  };
};
