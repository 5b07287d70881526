// Loads a built function bundle (dist/functions/<name>/index.mjs, the artifact CDK deploys) as a fresh
// module instance, with the function's environment applied while its module scope (config parsing,
// client construction) runs. AWS endpoint variables are shared by all functions and set process-wide.
import { pathToFileURL } from "node:url";
import type { FunctionName } from "../../lib/resources.ts";

let instance = 0;

export const loadBundle = async <T = unknown>(
  name: FunctionName,
  env: Record<string, string>,
): Promise<T> => {
  const previous = new Map<string, string | undefined>();
  for (const [key, value] of Object.entries(env)) {
    previous.set(key, process.env[key]);
    process.env[key] = value;
  }
  try {
    instance += 1;
    const url = pathToFileURL(`dist/functions/${name}/index.mjs`);
    url.searchParams.set("instance", String(instance));
    return await import(url.href);
  } finally {
    for (const [key, value] of previous) {
      if (key.startsWith("AWS_")) continue;
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
};
