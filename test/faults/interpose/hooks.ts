// Interposes TCP proxies between the local stack and its AWS emulators without changing the stack:
// a synchronous module resolve hook sends lib/local/stack.ts's imports of `./sqs-local.ts` and
// `./dynamodb-local.ts` to the proxied starters next to this file. Call `interposeEmulatorProxies()`
// before the first import of lib/local/stack.ts. An option on startLocalStack that lets a caller wrap
// each emulator endpoint before provisioning (`wrapEndpoint(service, endpoint) => endpoint`) would
// replace this redirect.
import { registerHooks } from "node:module";

const redirects: ReadonlyMap<string, string> = new Map([
  [
    new URL("../../../lib/local/sqs-local.ts", import.meta.url).href,
    new URL("./sqs-local.ts", import.meta.url).href,
  ],
  [
    new URL("../../../lib/local/dynamodb-local.ts", import.meta.url).href,
    new URL("./dynamodb-local.ts", import.meta.url).href,
  ],
]);
const stackUrl = new URL("../../../lib/local/stack.ts", import.meta.url).href;

let installed = false;

export const interposeEmulatorProxies = (): void => {
  if (installed) return;
  installed = true;
  registerHooks({
    resolve: (specifier, context, nextResolve) => {
      const resolved = nextResolve(specifier, context);
      if (context.parentURL !== stackUrl) return resolved;
      const redirect = redirects.get(resolved.url);
      return redirect === undefined ? resolved : { ...resolved, url: redirect };
    },
  });
};
