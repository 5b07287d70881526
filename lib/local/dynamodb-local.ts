// Starts AWS's own DynamoDB Local (the jar shipped inside the npm package amplify-dynamodb-simulator) on
// loopback, in memory. Needs Java 17+ on PATH.
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort, waitForHttp } from "./ports.ts";

export type DynamoDbLocal = { readonly endpoint: string; readonly port: number; stop(): Promise<void> };

const emulatorDir = (): string => {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("amplify-dynamodb-simulator/package.json")), "emulator");
};

export const startDynamoDbLocal = async (options: { port?: number } = {}): Promise<DynamoDbLocal> => {
  const port = options.port ?? (await freePort());
  const dir = emulatorDir();
  const child: ChildProcess = spawn(
    "java",
    [
      `-Djava.library.path=${join(dir, "DynamoDBLocal_lib")}`,
      "-Xms64m",
      "-jar",
      join(dir, "DynamoDBLocal.jar"),
      "-inMemory",
      "-port",
      String(port),
      // Without this DynamoDB Local tries to reach AWS for telemetry.
      "-disableTelemetry",
    ],
    // DynamoDB Local writes dynamodb-local-metadata.json into its working directory: keep it out of the repo.
    { stdio: ["ignore", "pipe", "pipe"], cwd: tmpdir() },
  );
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const spawnError = new Promise<never>((_, reject) =>
    child.once("error", (error) =>
      reject(new Error(`could not start DynamoDB Local (is Java 17 installed?): ${error.message}`)),
    ),
  );
  const endpoint = `http://127.0.0.1:${port}`;
  await Promise.race([
    waitForHttp(endpoint, 30_000),
    spawnError,
    exited.then((code) => {
      throw new Error(`DynamoDB Local exited with code ${code} before it was ready:\n${output}`);
    }),
  ]);
  return {
    endpoint,
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
};
