// What `npm start` prints: one line per invocation (function, what triggered it, outcome, duration),
// queue depths when they change, every call the functions made to Twilio, and the functions' own log
// lines indented under them. Formatting only; the stack decides what to report.
import { styleText } from "node:util";
import type { BatchReport } from "./event-source.ts";
import type { RequestReport } from "./front-door.ts";
import type { Invocation } from "./lambda-runner.ts";

export type QueueDepth = {
  readonly name: string;
  readonly visible: number;
  readonly inFlight: number;
};

export type TwilioCall = {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly code?: number;
  readonly ms: number;
};

export type StackConsole = {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  request(report: RequestReport): void;
  batch(functionName: string, queueName: string, report: BatchReport): void;
  scheduled(functionName: string, input: unknown, invocation: Invocation): void;
  twilio(call: TwilioCall): void;
  queues(depths: readonly QueueDepth[]): void;
  functionLog(functionName: string, line: string): void;
};

type Style = Parameters<typeof styleText>[0];

export type ConsoleOptions = {
  readonly write: (line: string) => void;
  readonly color: boolean;
  /** Print the functions' own stdout/stderr lines. */
  readonly functionLogs: boolean;
  /** Print them exactly as written instead of condensed (`renderLogLine`). */
  readonly rawFunctionLogs?: boolean;
};

const sourceWidth = 11;

const clock = (): string => new Date().toISOString().slice(11, 23);

const coldStart = (invocation: Invocation): string =>
  invocation.initDurationMs === undefined ? "" : ` (cold start, init ${invocation.initDurationMs} ms)`;

const brief = (value: unknown, max = 160): string => {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Metric values an EMF line carries next to its log fields (`_aws.CloudWatchMetrics[].Metrics[].Name`). */
const metricNames = (emf: unknown): Set<string> => {
  const names = new Set<string>();
  const directives = isRecord(emf) && Array.isArray(emf.CloudWatchMetrics) ? emf.CloudWatchMetrics : [];
  for (const directive of directives) {
    const metrics = isRecord(directive) && Array.isArray(directive.Metrics) ? directive.Metrics : [];
    for (const metric of metrics)
      if (isRecord(metric) && typeof metric.Name === "string") names.add(metric.Name);
  }
  return names;
};

const lambdaTextLine = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z\t[^\t]*\t([A-Z]+)\t(.*)$/;

/**
 * A function log line made readable: a structured (EMF) JSON line becomes `LEVEL msg key=value …` without
 * its metric block; a console line in Lambda's text format loses its timestamp and request id.
 */
export const renderLogLine = (line: string): string => {
  const text = lambdaTextLine.exec(line);
  if (text !== null) return `${text[1]} ${text[2]?.replaceAll("\r", "\n") ?? ""}`;
  if (!line.startsWith("{")) return line;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return line;
  }
  if (!isRecord(parsed)) return line;
  const { _aws: emf, level, msg, message, function: _function, Function: _dimension, ...fields } = parsed;
  const hidden = metricNames(emf);
  const pairs = Object.entries(fields)
    .filter(([key, value]) => !hidden.has(key) && value !== undefined && value !== null)
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  const head = [typeof level === "string" ? level.toUpperCase() : "", msg ?? message ?? ""].filter(Boolean);
  return [...head.map(String), ...pairs].join(" ");
};

const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? "" : "s"}`;

export const createConsole = (options: ConsoleOptions): StackConsole => {
  const paint = (style: Style, text: string): string =>
    options.color ? styleText(style, text, { validateStream: false }) : text;
  const line = (source: string, text: string, style?: Style): void => {
    const head = `${paint("gray", clock())}  ${paint("bold", source.padEnd(sourceWidth))}`;
    options.write(`${head}${style === undefined ? text : paint(style, text)}`);
  };

  return {
    info: (message) => line("stack", message),
    warn: (message) => line("stack", message, "yellow"),
    error: (message) => line("stack", message, "red"),

    request(report) {
      const what = `${report.method} ${report.rawPath} → ${report.status}`;
      const took = ` · ${report.ms} ms`;
      if (report.route === undefined || report.invocation === undefined) {
        const source = report.route?.functionName ?? "api";
        const why = report.gatewayError === undefined ? "" : ` (${report.gatewayError})`;
        line(
          source,
          `${what}${why}${took}`,
          report.status >= 500 ? "red" : report.status >= 400 ? "yellow" : undefined,
        );
        return;
      }
      const failed = report.gatewayError === undefined ? "" : ` (${report.gatewayError})`;
      const style: Style | undefined =
        report.gatewayError !== undefined || report.status >= 500
          ? "red"
          : report.status >= 400
            ? "yellow"
            : "green";
      line(
        report.route.functionName,
        `${paint(style ?? "reset", what)}${failed}${took}${coldStart(report.invocation)}`,
      );
    },

    batch(functionName, queueName, report) {
      const size = report.records.length;
      const what = `sqs ${queueName} ×${size}`;
      const took = ` · ${report.invocation.durationMs} ms${coldStart(report.invocation)}`;
      const { verdict } = report;
      switch (verdict.kind) {
        case "all-succeeded":
          line(
            functionName,
            `${what} → ${paint("green", `ok, ${plural(report.deleted.length, "record")} deleted`)}${took}`,
          );
          return;
        case "partial":
          line(
            functionName,
            `${what} → ${paint("yellow", `${verdict.failed.size} of ${size} failed`)}, ${report.deleted.length} deleted, ${report.retained.length} back after the visibility timeout${took}`,
          );
          return;
        case "all-failed":
          line(
            functionName,
            `${what} → ${paint("red", `batch failed: ${verdict.reason}`)}; all ${size} back after the visibility timeout${took}`,
          );
          return;
      }
    },

    scheduled(functionName, input, invocation) {
      const what = `schedule ${brief(input)}`;
      const took = ` · ${invocation.durationMs} ms${coldStart(invocation)}`;
      const { result } = invocation;
      if (result.status === "ok") {
        line(
          functionName,
          `${what} → ${paint("green", "ok")}${took} ${paint("gray", brief(result.payload))}`,
        );
      } else {
        line(
          functionName,
          `${what} → ${paint("red", `${result.error.errorType}: ${result.error.errorMessage}`)}${took}`,
        );
      }
    },

    twilio(call) {
      const code = call.code === undefined ? "" : ` (error ${call.code})`;
      const style: Style = call.status >= 400 ? "yellow" : "cyan";
      line(
        "twilio",
        `${paint(style, `${call.method} ${call.path} → ${call.status}${code}`)} · ${call.ms} ms`,
      );
    },

    queues(depths) {
      const parts = depths.map((depth) => {
        const flight = depth.inFlight > 0 ? ` (${depth.inFlight} in flight)` : "";
        const text = `${depth.name} ${depth.visible}${flight}`;
        return depth.name.endsWith("dlq") && depth.visible + depth.inFlight > 0 ? paint("red", text) : text;
      });
      line("queues", parts.join(" · "), undefined);
    },

    functionLog(functionName, text) {
      if (!options.functionLogs) return;
      const shown = options.rawFunctionLogs === true ? text : renderLogLine(text);
      options.write(paint("gray", `${" ".repeat(14)}${functionName.padEnd(sourceWidth)}│ ${shown}`));
    },
  };
};

/** For tests and embedding: a console that prints nothing. */
export const silentConsole: StackConsole = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  request: () => undefined,
  batch: () => undefined,
  scheduled: () => undefined,
  twilio: () => undefined,
  queues: () => undefined,
  functionLog: () => undefined,
};
