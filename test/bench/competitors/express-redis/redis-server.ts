// Starts Debian's `redis-server` on a free loopback port, in memory only (no RDB, no AOF), for the
// Express competitor. Returns undefined when the binary is not installed, so the benchmark can print
// how to install it and skip that column instead of failing.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { freePort } from "../../../../lib/local/ports.ts";

export type RedisServer = {
  readonly url: string;
  readonly version: string;
  /** Resident memory of the redis-server process (Linux /proc), for the memory column's footnote. */
  rssBytes(): Promise<number | undefined>;
  stop(): Promise<void>;
};

export const RedisInstallHint = "apt-get install -y redis-server";

export const startRedisServer = async (): Promise<RedisServer | undefined> => {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const ready = new Promise<"ready" | "missing">((resolve, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") resolve("missing");
      else reject(error);
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) resolve("ready");
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
  });
  const timeout = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const state = await ready.finally(() => clearTimeout(timeout));
  if (state === "missing") return undefined;
  child.removeAllListeners("exit");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url: `redis://127.0.0.1:${port}`,
    version: /version=([\d.]+)/.exec(output)?.[1] ?? "unknown",
    rssBytes: async () => {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, "utf8");
        const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
        return kib === undefined ? undefined : Number(kib) * 1024;
      } catch {
        return undefined;
      }
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
};
