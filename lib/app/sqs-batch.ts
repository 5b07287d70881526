// Partial-batch processing for FIFO queue consumers (Lambda ReportBatchItemFailures). Records of one
// message group run in order; the first failure in a group fails it and every later record of that
// group (they must not overtake it), while other groups carry on. Groups run concurrently.
import { type Envelope, InvalidEnvelopeError, parseEnvelope } from "../domain/queue-envelope.ts";

export type QueueRecord = {
  readonly messageId: string;
  readonly body: string;
  readonly attributes: {
    readonly MessageGroupId?: string | undefined;
    readonly ApproximateReceiveCount?: string | undefined;
  };
};

export type RecordContext = {
  readonly messageId: string;
  /** 1 on first delivery; more means an earlier attempt failed or timed out. */
  readonly receiveCount: number;
};

export type RecordOutcome = { readonly messageId: string; readonly eventId?: string } & (
  | { readonly ok: true }
  | { readonly ok: false; readonly error: unknown; readonly skipped: boolean }
);

export type BatchResult = {
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly outcomes: readonly RecordOutcome[];
};

export const processFifoBatch = async (
  records: readonly QueueRecord[],
  handle: (envelope: Envelope, context: RecordContext) => Promise<void>,
): Promise<BatchResult> => {
  const groups = new Map<string, QueueRecord[]>();
  for (const record of records) {
    const group = record.attributes.MessageGroupId ?? record.messageId;
    const list = groups.get(group) ?? [];
    list.push(record);
    groups.set(group, list);
  }
  const outcomes = new Map<string, RecordOutcome>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      let failure: unknown;
      for (const record of group) {
        if (failure !== undefined) {
          outcomes.set(record.messageId, {
            messageId: record.messageId,
            ok: false,
            error: failure,
            skipped: true,
          });
          continue;
        }
        let envelope: Envelope | undefined;
        try {
          envelope = parseEnvelope(record.body);
          const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? "1") || 1;
          await handle(envelope, { messageId: record.messageId, receiveCount });
          outcomes.set(record.messageId, {
            messageId: record.messageId,
            eventId: envelope.eventId,
            ok: true,
          });
        } catch (error) {
          failure = error;
          outcomes.set(record.messageId, {
            messageId: record.messageId,
            ...(envelope === undefined ? {} : { eventId: envelope.eventId }),
            ok: false,
            error,
            skipped: false,
          });
        }
      }
    }),
  );
  const ordered = records.map((record) => outcomes.get(record.messageId)).filter((o) => o !== undefined);
  return {
    batchItemFailures: ordered.filter((o) => !o.ok).map((o) => ({ itemIdentifier: o.messageId })),
    outcomes: ordered,
  };
};

/** A malformed record can never succeed; it still goes through redrive so the DLQ keeps it with its reason. */
export const isPoison = (error: unknown): boolean => error instanceof InvalidEnvelopeError;
