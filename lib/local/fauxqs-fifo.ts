// Makes fauxqs hand out FIFO messages the way SQS does, for the local stack's event source mappings.
//
// fauxqs 2.4.1 returns at most ONE message per message group per ReceiveMessage. SQS "first attempts to
// return as many messages with the same message group ID as possible" (SQS developer guide, "Using the
// message group ID"), so a Lambda batch from a FIFO queue routinely holds several messages of one group,
// and that is exactly when a consumer's stop-at-first-failure logic matters. Without this patch the local
// stack could never show a consumer a batch with two messages of one customer.
//
// The patch replaces the FIFO receive on fauxqs' queue class (same module instance fauxqs uses, resolved
// through fauxqs' own entry point) and keeps every group's ready list in sequence-number order after
// messages come back from being in flight; fauxqs puts each one back at the head of its group, which with
// several in flight per group would reverse their order. Applied only to the exact fauxqs version it was
// written against; any other version is left alone and the caller is told.
import { readFile } from "node:fs/promises";

const patchedVersion = "2.4.1";

type StoredMessage = {
  messageId: string;
  body: string;
  md5OfBody: string;
  messageAttributes: Record<string, unknown>;
  md5OfMessageAttributes?: string;
  approximateReceiveCount: number;
  approximateFirstReceiveTimestamp?: number;
  sequenceNumber?: string;
};

type ReceivedMessage = {
  MessageId: string;
  ReceiptHandle: string;
  MD5OfBody: string;
  Body: string;
  MD5OfMessageAttributes?: string;
  MessageAttributes?: Record<string, unknown>;
};

type FifoQueueInternals = {
  name: string;
  attributes: Record<string, string | undefined>;
  fifoMessages: Map<string, StoredMessage[]>;
  fifoLockedGroups: Map<string, number>;
  inflightMessages: Map<
    string,
    { message: StoredMessage; receiptHandle: string; visibilityDeadline: number }
  >;
  spy?: { addMessage(event: Record<string, unknown>): void };
  persistence?: {
    deleteMessage(messageId: string): void;
    updateMessageInflight(
      messageId: string,
      receiptHandle: string,
      deadline: number,
      receiveCount: number,
      firstReceive: number | undefined,
    ): void;
  };
  processTimers(): void;
  isFifo(): boolean;
};

type DeadLetterQueue = { enqueue(message: StoredMessage): void };

const redrive = (queue: FifoQueueInternals): { maxReceiveCount: number; deadLetterArn?: string } => {
  const policy = queue.attributes.RedrivePolicy;
  if (!policy) return { maxReceiveCount: Number.POSITIVE_INFINITY };
  try {
    const parsed: { maxReceiveCount?: number | string; deadLetterTargetArn?: string } = JSON.parse(policy);
    return {
      maxReceiveCount: Number(parsed.maxReceiveCount ?? Number.POSITIVE_INFINITY),
      ...(parsed.deadLetterTargetArn ? { deadLetterArn: parsed.deadLetterTargetArn } : {}),
    };
  } catch {
    return { maxReceiveCount: Number.POSITIVE_INFINITY };
  }
};

/** SQS semantics: fill the batch from one group before moving to the next; skip groups with messages in flight. */
function dequeueFifo(
  this: FifoQueueInternals,
  maxCount: number,
  visibilityTimeoutOverride: number | undefined,
  deadLetterQueueOf: ((arn: string) => DeadLetterQueue | undefined) | undefined,
): ReceivedMessage[] {
  this.processTimers();
  const visibilityTimeout =
    visibilityTimeoutOverride ?? Number.parseInt(this.attributes.VisibilityTimeout ?? "30", 10);
  const { maxReceiveCount, deadLetterArn } = redrive(this);
  const result: ReceivedMessage[] = [];
  const count = Math.min(maxCount, 10);
  for (const [groupId, groupMessages] of this.fifoMessages) {
    if (result.length >= count) break;
    if (this.fifoLockedGroups.has(groupId)) continue;
    while (result.length < count && groupMessages.length > 0) {
      const message = groupMessages.shift();
      if (message === undefined) break;
      message.approximateReceiveCount += 1;
      message.approximateFirstReceiveTimestamp ??= Date.now();
      const deadLetterQueue =
        deadLetterArn !== undefined && message.approximateReceiveCount > maxReceiveCount
          ? deadLetterQueueOf?.(deadLetterArn)
          : undefined;
      if (deadLetterQueue !== undefined) {
        this.spy?.addMessage({
          service: "sqs",
          queueName: this.name,
          messageId: message.messageId,
          body: message.body,
          messageAttributes: message.messageAttributes,
          status: "dlq",
          timestamp: Date.now(),
        });
        this.persistence?.deleteMessage(message.messageId);
        deadLetterQueue.enqueue(message);
        continue;
      }
      const receiptHandle = crypto.randomUUID();
      const visibilityDeadline = Date.now() + visibilityTimeout * 1000;
      this.inflightMessages.set(receiptHandle, { message, receiptHandle, visibilityDeadline });
      this.persistence?.updateMessageInflight(
        message.messageId,
        receiptHandle,
        visibilityDeadline,
        message.approximateReceiveCount,
        message.approximateFirstReceiveTimestamp,
      );
      result.push({
        MessageId: message.messageId,
        ReceiptHandle: receiptHandle,
        MD5OfBody: message.md5OfBody,
        Body: message.body,
        ...(message.md5OfMessageAttributes ? { MD5OfMessageAttributes: message.md5OfMessageAttributes } : {}),
        ...(Object.keys(message.messageAttributes).length > 0
          ? { MessageAttributes: message.messageAttributes }
          : {}),
      });
      this.fifoLockedGroups.set(groupId, (this.fifoLockedGroups.get(groupId) ?? 0) + 1);
    }
    if (groupMessages.length === 0) this.fifoMessages.delete(groupId);
  }
  return result;
}

const bySequenceNumber = (a: StoredMessage, b: StoredMessage): number =>
  (a.sequenceNumber ?? "").localeCompare(b.sequenceNumber ?? "");

function restoreGroupOrder(this: FifoQueueInternals): void {
  if (!this.isFifo()) return;
  for (const messages of this.fifoMessages.values()) if (messages.length > 1) messages.sort(bySequenceNumber);
}

const isObject = (value: unknown): value is object =>
  (typeof value === "object" || typeof value === "function") && value !== null;

let applied: Promise<string | undefined> | undefined;

/**
 * Patches fauxqs once per process. Resolves to undefined when applied, or to the reason it was not
 * (another fauxqs version, or internals not where 2.4.1 keeps them) for the caller to print.
 */
export const patchFauxqsFifoReceive = (): Promise<string | undefined> => {
  applied ??= (async () => {
    const entry = import.meta.resolve("fauxqs");
    const manifest: { version?: string } = JSON.parse(
      await readFile(new URL("../package.json", entry), "utf8"),
    );
    if (manifest.version !== patchedVersion) {
      return `fauxqs ${manifest.version} is not ${patchedVersion}; FIFO receives keep fauxqs' one-message-per-group behaviour`;
    }
    const store: Record<string, unknown> = await import(new URL("./sqs/sqsStore.js", entry).href);
    const queueClass = store.SqsQueue;
    const prototype: unknown = isObject(queueClass) ? Reflect.get(queueClass, "prototype") : undefined;
    const methods = ["dequeueFifo", "processTimers", "changeVisibility"];
    if (
      !isObject(prototype) ||
      !methods.every((name) => typeof Reflect.get(prototype, name) === "function")
    ) {
      return "fauxqs internals changed; FIFO receives keep fauxqs' one-message-per-group behaviour";
    }
    Reflect.set(prototype, "dequeueFifo", dequeueFifo);
    for (const name of ["processTimers", "changeVisibility"]) {
      const original: unknown = Reflect.get(prototype, name);
      if (typeof original !== "function") continue;
      Reflect.set(prototype, name, function (this: FifoQueueInternals, ...args: unknown[]) {
        const value: unknown = Reflect.apply(original, this, args);
        restoreGroupOrder.call(this);
        return value;
      });
    }
    return undefined;
  })();
  return applied;
};
