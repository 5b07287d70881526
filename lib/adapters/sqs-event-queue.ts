// EventQueue on SQS FIFO queues. Group and deduplication ids are derived so any event id or address is
// acceptable to SQS (≤ 128 printable ASCII characters).
import { createHash } from "node:crypto";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { EventQueue, QueueMessage } from "../app/ports.ts";
import type { QueueName } from "../resources.ts";

const sqsSafe = /^[\x21-\x7e]{1,128}$/;

/** Keeps readable ids readable; anything SQS would refuse becomes a stable hash. */
export const sqsId = (value: string): string =>
  sqsSafe.test(value) ? value : createHash("sha256").update(value).digest("base64url");

export const sqsEventQueue = (
  client: SQSClient,
  queueUrls: Readonly<Record<QueueName, string>>,
): EventQueue => ({
  async send(queue: QueueName, message: QueueMessage): Promise<void> {
    await client.send(
      new SendMessageCommand({
        QueueUrl: queueUrls[queue],
        MessageBody: message.body,
        MessageGroupId: sqsId(message.groupKey),
        MessageDeduplicationId: sqsId(message.deduplicationId),
      }),
    );
  },
});
