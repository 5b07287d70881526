// Property tests with twilio@6.2.0 as the oracle: our SDK-free verifier must accept exactly what
// `validateRequest` / `validateRequestWithBody` accept, over generated URLs, params and bodies.
//
// The SDK throws when the URL as received does not match and `new URL()` cannot parse it (and
// `validateRequestWithBody` always throws on such a URL). A request the SDK cannot validate is a rejected
// request, so an SDK throw counts as `false` here; `verifySignature` itself never throws.

import assert from "node:assert/strict";
import querystring from "node:querystring";
import { describe, it } from "node:test";
import fc from "fast-check";
import twilio from "twilio";
import type { FormParams } from "../../lib/domain/form-body.ts";
import { expectedSignature, signatureUrlCandidates, verifySignature } from "../../lib/domain/signature.ts";

const NUM_RUNS = 5000;

const sdkValidate = (token: string, signature: string, url: string, params: FormParams): boolean => {
  try {
    return twilio.validateRequest(token, signature, url, params);
  } catch {
    return false;
  }
};
const sdkValidateWithBody = (token: string, signature: string, url: string, body: string): boolean => {
  try {
    return twilio.validateRequestWithBody(token, signature, url, body);
  } catch {
    return false;
  }
};
const sdkAcceptsAny = (tokens: readonly string[], signature: string, url: string, params: FormParams) =>
  tokens.some((token) => sdkValidate(token, signature, url, params));

/** Counts outcomes so a property that only ever sees one answer fails instead of passing vacuously. */
const outcomes = () => {
  const seen = { accepted: 0, rejected: 0 };
  return {
    record: (accepted: boolean) => {
      if (accepted) seen.accepted++;
      else seen.rejected++;
    },
    assertBoth: (minShare: number) => {
      const total = seen.accepted + seen.rejected;
      assert.ok(seen.accepted >= total * minShare, `too few accepted: ${JSON.stringify(seen)}`);
      assert.ok(seen.rejected >= total * minShare, `too few rejected: ${JSON.stringify(seen)}`);
    },
  };
};

const joined = (alphabet: readonly string[], maxLength: number) =>
  fc.array(fc.constantFrom(...alphabet), { maxLength }).map((parts) => parts.join(""));

const URL_TEXT = [
  ..."aZ09-._~!*(),;$",
  "'",
  "+",
  "@",
  ":",
  "=",
  "%20",
  "%27",
  "%2B",
  "%2b",
  "%40",
  "%3A",
  "%7E",
  "%zz",
  "%",
  "%4",
  " ",
  "é",
  "😀",
  "\ud83d",
  "\\",
  "|",
  "^",
  "`",
  "{",
  '"',
  "<",
  "[",
];
const QUERY_TEXT = [
  ...URL_TEXT,
  "&",
  "&&",
  "?",
  "/",
  "%26",
  "%3D",
  "%C3%A9",
  "%E9",
  "%ED%A0%80",
  "%EF%BB%BF",
  "10",
];

const urlParts = fc.record({
  scheme: fc.constantFrom("https", "http", "HTTPS", "Http", "ftp", "foo"),
  userInfo: fc.option(
    joined(["u", "s", "er", "@", ":", "%40", "é", "'", "p"], 5).map((t) => `${t}@`),
    { nil: "" },
  ),
  host: fc.constantFrom(
    "example.com",
    "Example.COM",
    "mycompany.com",
    "127.0.0.1",
    "[::1]",
    "[2001:DB8::1]",
    "bücher.example",
    "xn--bcher-kva.example",
    "ex%41mple.com",
    "exa mple.com",
  ),
  port: fc.constantFrom("", "", "", ":80", ":443", ":8080", ":1234", ":", ":0443", ":65536"),
  path: fc
    .array(joined(URL_TEXT, 6), { maxLength: 4 })
    .map((segments) => segments.map((s) => `/${s}`).join("")),
  query: fc.option(
    joined(QUERY_TEXT, 12).map((text) => `?${text}`),
    { nil: "" },
  ),
  fragment: fc.option(
    joined(["a", "#", "'", " ", "é", "%20"], 4).map((text) => `#${text}`),
    { freq: 8, nil: "" },
  ),
});
type UrlParts = typeof urlParts extends fc.Arbitrary<infer T> ? T : never;

const build = (parts: UrlParts, port: string = parts.port) =>
  `${parts.scheme}://${parts.userInfo}${parts.host}${port}${parts.path}${parts.query}${parts.fragment}`;
const defaultPort = (parts: UrlParts) => (parts.scheme.toLowerCase() === "https" ? ":443" : ":80");

// What the SDK's legacy fallback does to a query, computed with Node's own `querystring`. The SDK only
// feeds it WHATWG-serialized (ASCII) URLs; a raw URL with an unpaired surrogate makes `stringify` throw,
// and then this variant is just the URL itself.
const legacy = (url: string) => {
  const queryStart = url.indexOf("?");
  if (queryStart === -1 || queryStart === url.length - 1) return url;
  try {
    return `${url.slice(0, queryStart)}?${querystring.stringify(querystring.parse(url.slice(queryStart + 1)))}`;
  } catch {
    return url;
  }
};

const whatwg = (url: string, port: "keep" | "none" | "default") => {
  const parsed = URL.parse(url);
  if (!parsed) return url;
  if (port === "keep") return parsed.href;
  parsed.port = "";
  if (port === "none") return parsed.href;
  const credentials = parsed.username + (parsed.password ? `:${parsed.password}` : "");
  const fallback = parsed.protocol === "https:" ? ":443" : ":80";
  return `${parsed.protocol}//${credentials ? `${credentials}@` : ""}${parsed.host}${fallback}${parsed.pathname}${parsed.search}${parsed.hash}`;
};

/** The URL Twilio might have signed, derived from the received URL's parts without the module under test. */
const signedVariant = fc.constantFrom(
  (p: UrlParts) => build(p),
  (p: UrlParts) => build(p, ""),
  (p: UrlParts) => build(p, defaultPort(p)),
  (p: UrlParts) => build(p, ":9999"),
  (p: UrlParts) => whatwg(build(p), "keep"),
  (p: UrlParts) => whatwg(build(p), "none"),
  (p: UrlParts) => whatwg(build(p), "default"),
  (p: UrlParts) => legacy(whatwg(build(p), "none")),
  (p: UrlParts) => legacy(whatwg(build(p), "default")),
  (p: UrlParts) => legacy(build(p)),
  (p: UrlParts) => `${build(p)}x`,
  (p: UrlParts) => build({ ...p, path: `${p.path}/other` }),
);

const paramText = fc.oneof(
  fc.constantFrom("", "+14155550100", "It's amazing", "a", "b", "A"),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.string({ unit: "binary", maxLength: 6 }),
);
const paramName = fc.oneof(
  fc.constantFrom(
    "Body",
    "To",
    "From",
    "MessagingBinding.Address",
    "__proto__",
    "constructor",
    "0",
    "10",
    "2",
    "a",
    "",
  ),
  fc.string({ unit: "binary", maxLength: 6 }),
);
const paramValue = fc.oneof(
  { weight: 3, arbitrary: paramText },
  {
    weight: 1,
    arbitrary: fc.array(fc.oneof(fc.constantFrom("", "x", "y", "é"), paramText), { maxLength: 4 }),
  },
);
// Object.fromEntries defines own properties, so `__proto__` is a real key, as in parseFormBody's output.
const formParams = fc
  .array(fc.tuple(paramName, paramValue), { maxLength: 8 })
  .map((entries): FormParams => Object.fromEntries(entries));

// Mostly signed by a configured token (either position in a rotation list), sometimes by a stranger.
const tokens = fc
  .tuple(
    fc.constantFrom(["primary-token"], ["primary-token", "secondary-token"], ["12345"]),
    fc.nat(),
    fc.nat({ max: 4 }),
  )
  .map(([configured, index, stranger]) => ({
    configured,
    signer: stranger === 0 ? "unknown-token" : (configured[index % configured.length] ?? "unknown-token"),
  }));

describe("signature agrees with twilio@6.2.0", () => {
  it("(1) expectedSignature equals getExpectedTwilioSignature", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", minLength: 1, maxLength: 12 }),
        fc.oneof(
          urlParts.map((parts) => build(parts)),
          fc.string({ unit: "binary", maxLength: 20 }),
        ),
        formParams,
        (token, url, params) => {
          assert.equal(
            expectedSignature(token, url, params),
            twilio.getExpectedTwilioSignature(token, url, params),
          );
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("(2) verifySignature accepts exactly what validateRequest accepts, over signed URL variants", () => {
    const seen = outcomes();
    fc.assert(
      fc.property(
        urlParts,
        signedVariant,
        formParams,
        tokens,
        (parts, variant, params, { configured, signer }) => {
          const url = build(parts);
          const signature = twilio.getExpectedTwilioSignature(signer, variant(parts), params);
          const sdk = sdkAcceptsAny(configured, signature, url, params);
          seen.record(sdk);
          assert.equal(verifySignature({ url, signature, params }, configured), sdk);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    seen.assertBoth(0.2);
  });

  it("(2b) legacy-querystring re-encoding matches Node's querystring on dense queries", () => {
    const seen = outcomes();
    const denseQuery = joined(
      [
        ...QUERY_TEXT,
        "&",
        "=",
        "+",
        "%",
        "0",
        "1",
        "9",
        "a",
        "F",
        "%00",
        "__proto__",
        "constructor",
        "%5F%5Fproto%5F%5F",
      ],
      30,
    );
    fc.assert(
      fc.property(
        fc.constantFrom("https://example.com/p?", "http://example.com:8080/p?", "https://example.com/?a=1&"),
        denseQuery,
        fc.boolean(),
        (prefix, query, keepPort) => {
          const url = prefix + query;
          const signed = legacy(whatwg(url, keepPort ? "keep" : "none"));
          const signature = twilio.getExpectedTwilioSignature("12345", signed, {});
          const sdk = sdkValidate("12345", signature, url, {});
          seen.record(sdk);
          assert.equal(verifySignature({ url, signature, params: {} }, ["12345"]), sdk);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    seen.assertBoth(0);
  });

  it("(2c) every candidate we try is one the SDK accepts, the URL as received first", () => {
    fc.assert(
      fc.property(urlParts, (parts) => {
        const url = build(parts);
        const candidates = signatureUrlCandidates(url);
        assert.equal(candidates[0], url);
        assert.equal(new Set(candidates).size, candidates.length);
        assert.ok(candidates.length <= 6);
        for (const candidate of candidates) {
          const signature = twilio.getExpectedTwilioSignature("12345", candidate, {});
          assert.equal(sdkValidate("12345", signature, url, {}), true, candidate);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("(3) tampered requests get the same answer (false in practice)", () => {
    const seen = outcomes();
    const tamper = fc.oneof(
      fc.record({
        kind: fc.constant("signature" as const),
        at: fc.nat(),
        char: fc.constantFrom("A", "b", "+", "/", "="),
      }),
      fc.record({ kind: fc.constant("value" as const), at: fc.nat(), value: paramText }),
      fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("add" as const), name: paramName, value: paramText }),
      fc.record({ kind: fc.constant("url" as const), at: fc.nat(), char: fc.constantFrom(...URL_TEXT) }),
    );
    fc.assert(
      fc.property(urlParts, formParams, tamper, (parts, params, change) => {
        const url = build(parts);
        const signature = twilio.getExpectedTwilioSignature("12345", url, params);
        const names = Object.keys(params);
        let request = { url, signature, params };
        switch (change.kind) {
          case "signature": {
            const at = change.at % signature.length;
            request = {
              ...request,
              signature: signature.slice(0, at) + change.char + signature.slice(at + 1),
            };
            break;
          }
          case "value": {
            const name = names[change.at % Math.max(names.length, 1)] ?? "Body";
            request = { ...request, params: { ...params, [name]: change.value } };
            break;
          }
          case "drop": {
            const name = names[change.at % Math.max(names.length, 1)];
            request = {
              ...request,
              params: Object.fromEntries(Object.entries(params).filter(([n]) => n !== name)),
            };
            break;
          }
          case "add":
            request = { ...request, params: { ...params, [change.name]: change.value } };
            break;
          case "url": {
            const at = change.at % (url.length + 1);
            request = { ...request, url: url.slice(0, at) + change.char + url.slice(at) };
            break;
          }
        }
        const sdk = sdkValidate("12345", request.signature, request.url, request.params);
        seen.record(sdk);
        assert.equal(verifySignature(request, ["12345"]), sdk);
      }),
      { numRuns: NUM_RUNS },
    );
    seen.assertBoth(0);
  });

  it("(4) JSON bodies agree with validateRequestWithBody", () => {
    const seen = outcomes();
    const sha256 = (text: string) => twilio.getExpectedBodyHash(text);
    const hashQuery = fc.constantFrom(
      (body: string) => `bodySHA256=${sha256(body)}`,
      (body: string) => `bodySHA256=${sha256(body).toUpperCase()}`,
      (body: string) => `bodySHA256=${sha256(`${body} `)}`,
      (body: string) => `bodySHA256=${sha256(body)}&bodySHA256=0`,
      (body: string) => `bodySHA256=0&bodySHA256=${sha256(body)}`,
      (body: string) => `bodySHA256=%3${sha256(body).slice(0, 1)}${sha256(body).slice(1)}`,
      (body: string) => `bodySHA256=${sha256(body)}+`,
      () => "bodySHA256=",
      () => "other=1",
    );
    const body = fc.oneof(
      fc.constantFrom("{}", '{"property": "value", "boolean": true}', ""),
      fc.string({ unit: "grapheme", maxLength: 40 }),
      fc.string({ unit: "binary", maxLength: 10 }),
    );
    fc.assert(
      fc.property(
        urlParts,
        hashQuery,
        body,
        signedVariant,
        tokens,
        (parts, hashFor, raw, variant, { configured, signer }) => {
          const withHash = {
            ...parts,
            query: `${parts.query || "?"}${parts.query ? "&" : ""}${hashFor(raw)}`,
          };
          const url = build(withHash);
          const signature = twilio.getExpectedTwilioSignature(signer, variant(withHash), {});
          const sdk = configured.some((token) => sdkValidateWithBody(token, signature, url, raw));
          seen.record(sdk);
          assert.equal(verifySignature({ url, signature, jsonBody: raw }, configured), sdk);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    seen.assertBoth(0.03);
  });

  it("stops the legacy re-encoding after 1000 pairs, as Node's querystring does", () => {
    for (const count of [999, 1000, 1001, 1500]) {
      const query = Array.from({ length: count }, (_, index) => `k${index % 7}=v%27${index}`).join("&");
      const url = `https://example.com/p?${query}`;
      const signature = twilio.getExpectedTwilioSignature("12345", legacy(whatwg(url, "none")), {});
      assert.equal(sdkValidate("12345", signature, url, {}), true);
      assert.equal(verifySignature({ url, signature, params: {} }, ["12345"]), true, `${count} pairs`);
    }
  });
});
