// Structured logs and CloudWatch metrics in one line: each line is a JSON object that is also an EMF
// document, so CloudWatch extracts the metrics from the log without an agent or an API call. Written
// with process.stdout.write (console.log in Lambda prefixes lines, which would break EMF parsing).
import { emfDimension, type MetricName } from "../metrics.ts";

export type LogSink = (line: string) => void;
export const stdoutSink: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

export type MetricUnit = "Count" | "Milliseconds";
export type Metric = { readonly name: MetricName; readonly value: number; readonly unit?: MetricUnit };

export type Telemetry = {
  /** One structured line; `metrics` become EMF metrics under the function's dimension. */
  emit(fields: Readonly<Record<string, unknown>>, metrics?: readonly Metric[]): void;
};

export const telemetry = (options: {
  readonly functionName: string;
  readonly namespace: string;
  readonly sink?: LogSink;
  readonly now?: () => number;
}): Telemetry => {
  const sink = options.sink ?? stdoutSink;
  const now = options.now ?? Date.now;
  return {
    emit(fields, metrics = []) {
      const document: Record<string, unknown> = { level: "info", function: options.functionName, ...fields };
      if (metrics.length > 0) {
        document._aws = {
          Timestamp: now(),
          CloudWatchMetrics: [
            {
              Namespace: options.namespace,
              Dimensions: [[emfDimension]],
              Metrics: metrics.map((metric) => ({ Name: metric.name, Unit: metric.unit ?? "Count" })),
            },
          ],
        };
        document[emfDimension] = options.functionName;
        for (const metric of metrics) document[metric.name] = metric.value;
      }
      sink(JSON.stringify(document));
    },
  };
};
