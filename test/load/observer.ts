// Watches what a run did, only through what the local stack shows from outside: the Twilio emulator's
// state (every message in every conversation, polled every few ms — a mirrored message carries the
// Messaging SID it copies in `attributes.messagingMessageSid`) and the stack console's reports (every SQS
// batch a consumer got, what was deleted and what was left for a retry; function log lines; Twilio
// calls). Nothing here reads the functions' tables.

import { type StackConsole, silentConsole } from "../../lib/local/console.ts";
import type { BatchReport } from "../../lib/local/event-source.ts";
import type { TwilioEmulator } from "../../lib/local/twilio-emulator/server.ts";
import { Queues } from "../../lib/resources.ts";

export type MirroredCopy = {
  readonly conversationSid: string;
  readonly index: number;
  readonly author: string;
  readonly body: string | null;
  readonly seenAt: number;
};

/** An outbound message listed in its thread's `outboundNotMirrored` attribute instead of posted. */
export type OutboundSummary = {
  readonly conversationSid: string;
  readonly status: string;
  readonly seenAt: number;
};

export type BatchSummary = {
  readonly functionName: string;
  readonly queue: string;
  readonly at: number;
  readonly records: number;
  readonly deleted: number;
  readonly retained: number;
  readonly verdict: BatchReport["verdict"]["kind"];
  readonly reason: string | undefined;
};

export type Observer = {
  /** Pass as `console` to startLocalStack. */
  readonly console: StackConsole;
  /** Mirrored copies by the Messaging SID they copy (more than one = a duplicate post). */
  readonly copies: ReadonlyMap<string, readonly MirroredCopy[]>;
  /** Outbound messages summarised in conversation attributes, by Messaging SID (latest status). */
  readonly summaries: ReadonlyMap<string, OutboundSummary>;
  /** The status a mirrored outbound shows now: its copy's `attributes.status`, or its summary entry. */
  currentStatus(messageSid: string): string | undefined;
  /** Successful consumptions (record deleted after the function succeeded) per queue, per event id. */
  consumedCount(queue: string, eventId: string): number;
  /** Event ids whose records were consumed on `queue`. */
  consumedIds(queue: string): ReadonlySet<string>;
  /**
   * Whether `queue`'s consumer ever got the event: in a batch report, or named in the consumer's own log
   * line. A batch whose DeleteMessageBatch call failed is reported with those records as `deleteFailed`
   * (received and retained, not consumed); the logs are a second witness of what the function ran.
   */
  received(queue: string, eventId: string): boolean;
  readonly batches: readonly BatchSummary[];
  /** Function log lines (most recent 20000). */
  readonly logs: readonly { readonly functionName: string; readonly line: string; readonly at: number }[];
  readonly twilioCalls: ReadonlyMap<number, number>;
  /** Front-door answers the gateway gave itself (a function error or timeout), with the reason. */
  readonly gatewayErrors: readonly {
    readonly status: number;
    readonly reason: string;
    readonly at: number;
  }[];
  /** Starts polling the emulator. */
  watch(emulator: TwilioEmulator, intervalMs?: number): void;
  /** One poll now (at the end of a run, so nothing posted in the last interval is missed). */
  poll(): void;
  stop(): void;
};

const parseAttributes = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? { ...value } : {};
  } catch {
    return {};
  }
};

const eventIdOf = (body: string): string | undefined => {
  try {
    const value: unknown = JSON.parse(body);
    if (typeof value !== "object" || value === null) return undefined;
    const id = Reflect.get(value, "eventId");
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
};

/** The queue each consumer function reads. */
const consumerQueues: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(Queues).map(([queue, definition]) => [definition.consumer, queue]),
);

export const createObserver = (): Observer => {
  const copies = new Map<string, MirroredCopy[]>();
  const consumed = new Map<string, Map<string, number>>();
  const batches: BatchSummary[] = [];
  const logs: { functionName: string; line: string; at: number }[] = [];
  const twilioCalls = new Map<number, number>();
  const gatewayErrors: { status: number; reason: string; at: number }[] = [];
  const summaries = new Map<string, OutboundSummary>();
  const receivedIds = new Map<string, Set<string>>();
  const markReceived = (queue: string, eventId: string) => {
    const ids = receivedIds.get(queue) ?? new Set<string>();
    ids.add(eventId);
    receivedIds.set(queue, ids);
  };
  const seenPerConversation = new Map<string, number>();
  let emulator: TwilioEmulator | undefined;
  let timer: NodeJS.Timeout | undefined;

  const poll = (): void => {
    if (emulator === undefined) return;
    const now = Date.now();
    for (const conversation of emulator.state.conversations()) {
      const listed = parseAttributes(conversation.attributes).outboundNotMirrored;
      for (const entry of Array.isArray(listed) ? listed : []) {
        const sid: unknown =
          typeof entry === "object" && entry !== null ? Reflect.get(entry, "messagingMessageSid") : undefined;
        const status: unknown =
          typeof entry === "object" && entry !== null ? Reflect.get(entry, "status") : undefined;
        if (typeof sid !== "string" || typeof status !== "string") continue;
        const previous = summaries.get(sid);
        summaries.set(sid, { conversationSid: conversation.sid, status, seenAt: previous?.seenAt ?? now });
      }
      const messages = emulator.state.messages(conversation.sid);
      const seen = seenPerConversation.get(conversation.sid) ?? 0;
      if (messages.length <= seen) continue;
      for (const message of messages.slice(seen)) {
        const sid = parseAttributes(message.attributes).messagingMessageSid;
        if (typeof sid !== "string") continue;
        const list = copies.get(sid) ?? [];
        list.push({
          conversationSid: conversation.sid,
          index: message.index,
          author: message.author,
          body: message.body,
          seenAt: now,
        });
        copies.set(sid, list);
      }
      seenPerConversation.set(conversation.sid, messages.length);
    }
  };

  const console: StackConsole = {
    ...silentConsole,
    batch: (functionName, queue, report) => {
      const deleted = new Set(report.deleted);
      const perQueue = consumed.get(queue) ?? new Map<string, number>();
      consumed.set(queue, perQueue);
      for (const record of report.records) {
        const eventId = eventIdOf(record.body) ?? `unparsable:${record.messageId}`;
        markReceived(queue, eventId);
        if (!deleted.has(record.messageId)) continue;
        perQueue.set(eventId, (perQueue.get(eventId) ?? 0) + 1);
      }
      batches.push({
        functionName,
        queue,
        at: Date.now(),
        records: report.records.length,
        deleted: report.deleted.length,
        retained: report.retained.length,
        verdict: report.verdict.kind,
        reason: report.verdict.kind === "all-failed" ? report.verdict.reason : undefined,
      });
    },
    request: (report) => {
      if (report.gatewayError !== undefined && gatewayErrors.length < 1000) {
        gatewayErrors.push({ status: report.status, reason: report.gatewayError, at: Date.now() });
      }
    },
    twilio: (call) => {
      twilioCalls.set(call.status, (twilioCalls.get(call.status) ?? 0) + 1);
    },
    functionLog: (functionName, line) => {
      const queue = consumerQueues[functionName];
      const eventId = queue === undefined ? undefined : /"eventId":"([^"]+)"/.exec(line)?.[1];
      if (queue !== undefined && eventId !== undefined) markReceived(queue, eventId);
      logs.push({ functionName, line, at: Date.now() });
      if (logs.length > 20_000) logs.shift();
    },
  };

  return {
    console,
    copies,
    summaries,
    currentStatus: (messageSid) => {
      const copy = copies.get(messageSid)?.[0];
      if (copy === undefined || emulator === undefined) return summaries.get(messageSid)?.status;
      const message = emulator.state.messages(copy.conversationSid).find((m) => m.index === copy.index);
      const status = parseAttributes(message?.attributes ?? "{}").status;
      return typeof status === "string" ? status : undefined;
    },
    consumedCount: (queue, eventId) => consumed.get(queue)?.get(eventId) ?? 0,
    consumedIds: (queue) => new Set(consumed.get(queue)?.keys() ?? []),
    received: (queue, eventId) => receivedIds.get(queue)?.has(eventId) ?? false,
    batches,
    logs,
    twilioCalls,
    gatewayErrors,
    watch: (target, intervalMs = 20) => {
      emulator = target;
      timer = setInterval(poll, intervalMs);
    },
    poll,
    stop: () => clearInterval(timer),
  };
};
