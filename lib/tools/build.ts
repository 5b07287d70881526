// Bundles every function in `Functions` with esbuild into dist/functions/<name>/index.mjs (+ lazy chunks).
// These directories are the one artifact: CDK deploys them, the local stack and the benchmarks run them.
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";
import { type FunctionName, Functions, functionNames } from "../resources.ts";

export const distDir = (name: FunctionName): string => join("dist", "functions", name);

// SDK v3 still calls require() for node built-ins in a few places; ESM bundles need a real `require`.
const requireBanner =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/** Bundles one entry the way every function is bundled; benchmarks reuse it for their baselines. */
export const bundle = async (entry: string, outdir: string): Promise<number> => {
  await rm(outdir, { recursive: true, force: true });
  await build({
    entryPoints: { index: entry },
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node24",
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    legalComments: "none",
    mainFields: ["module", "main"],
    banner: { js: requireBanner },
    logLevel: "warning",
  });
  return (await stat(join(outdir, "index.mjs"))).size;
};

export const buildFunction = (name: FunctionName): Promise<number> =>
  bundle(Functions[name].entry, distDir(name));

if (import.meta.main) {
  const only = process.argv.slice(2).filter((arg): arg is FunctionName => arg in Functions);
  for (const name of only.length > 0 ? only : functionNames) {
    const size = await buildFunction(name);
    console.log(`built ${distDir(name)}/index.mjs ${(size / 1024).toFixed(1)} KiB`);
  }
}
