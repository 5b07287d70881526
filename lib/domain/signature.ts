// Verifies X-Twilio-Signature exactly as twilio@6.2.0's `validateRequest` / `validateRequestWithBody` do,
// without bundling the SDK: same HMAC input, same candidate URLs, same byte comparison. Any divergence
// either rejects genuine webhooks or accepts ones the SDK would refuse, so the property tests use the SDK
// as the oracle.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { FormParams } from "./form-body.ts";

export type SignedRequest =
  | { url: string; signature: string | undefined; params: FormParams }
  | { url: string; signature: string | undefined; jsonBody: string };

const utf8 = new TextEncoder();

/** Twilio's string-to-sign suffix: names in UTF-16 order, each value of a repeated name de-duplicated and sorted. */
const signedParams = (params: FormParams): string => {
  let data = "";
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    if (Array.isArray(value)) {
      for (const item of Array.from(new Set(value)).sort()) data += name + item;
    } else {
      data += name + value;
    }
  }
  return data;
};

// The URL and the params are concatenated as strings before UTF-8 encoding, like the SDK does, so a
// surrogate pair split across the boundary encodes identically.
const hmacBase64 = (authToken: string, data: string): string =>
  createHmac("sha1", authToken).update(data, "utf8").digest("base64");

export const expectedSignature = (authToken: string, url: string, params: FormParams): string =>
  hmacBase64(authToken, url + signedParams(params));

type UrlParts = { scheme: string; userInfo: string; host: string; port: string; rest: string };

// Splits the authority by string surgery so path and query keep the bytes Twilio signed; `new URL()`
// would re-encode them (`'` becomes `%27`). Ported from the SDK's `splitUrl`.
const splitUrl = (url: string): UrlParts | undefined => {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (!match) return undefined;
  const [prefix, scheme = "", authority = ""] = match;
  const userInfoEnd = authority.lastIndexOf("@");
  const hostAndPort = authority.slice(userInfoEnd + 1);
  // A colon only starts the port after the closing bracket of an IPv6 literal.
  const portStart = hostAndPort.indexOf(":", hostAndPort.lastIndexOf("]") + 1);
  return {
    scheme,
    userInfo: authority.slice(0, userInfoEnd + 1),
    host: portStart === -1 ? hostAndPort : hostAndPort.slice(0, portStart),
    port: portStart === -1 ? "" : hostAndPort.slice(portStart),
    rest: url.slice(prefix.length),
  };
};

// Twilio signs with or without the port depending on the product (twilio-node #411, twilio-python #402).
const addPort = (url: string): string => {
  const parts = splitUrl(url);
  if (!parts || parts.port) return url;
  const port = parts.scheme.toLowerCase() === "https://" ? ":443" : ":80";
  return parts.scheme + parts.userInfo + parts.host + port + parts.rest;
};

const removePort = (url: string): string => {
  const parts = splitUrl(url);
  return parts ? parts.scheme + parts.userInfo + parts.host + parts.rest : url;
};

// Node's legacy `querystring.parse` stops after this many `&`-separated pairs.
const LEGACY_MAX_PAIRS = 1000;
const VALID_ESCAPE = /%[0-9a-f]{2}/i;
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

const hexDigit = (code: number): number => {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
};

// `querystring.unescapeBuffer(s).toString()`: decode valid escapes to bytes, keep everything else, and
// replace invalid UTF-8 with U+FFFD (the fallback `querystring.unescape` takes when decodeURIComponent throws).
const unescapeLeniently = (text: string): string => {
  const bytes = new Uint8Array(text.length);
  let length = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 37 && index < text.length - 2) {
      const high = hexDigit(text.charCodeAt(index + 1));
      const low = hexDigit(text.charCodeAt(index + 2));
      if (high >= 0 && low >= 0) {
        bytes[length++] = high * 16 + low;
        index += 2;
        continue;
      }
    }
    bytes[length++] = code;
  }
  return lenientUtf8.decode(bytes.subarray(0, length));
};

const legacyUnescape = (raw: string): string => {
  const spaced = raw.replaceAll("+", " ");
  if (!VALID_ESCAPE.test(spaced)) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return unescapeLeniently(spaced);
  }
};

/**
 * `querystring.stringify(querystring.parse(query))`, ported because this module may not import anything but
 * node:crypto. Only ever fed the query of a WHATWG-serialized URL, which is ASCII, the domain on which this
 * port matches Node byte for byte. A null-prototype object keeps Node's key order (integer-like keys first).
 */
const legacyReencode = (query: string): string => {
  const parsed: Record<string, string | string[]> = Object.create(null);
  for (const pair of query.split("&", LEGACY_MAX_PAIRS)) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const name = legacyUnescape(equals === -1 ? pair : pair.slice(0, equals));
    const value = equals === -1 ? "" : legacyUnescape(pair.slice(equals + 1));
    const existing = parsed[name];
    if (existing === undefined) parsed[name] = value;
    else if (typeof existing === "string") parsed[name] = [existing, value];
    else existing.push(value);
  }
  const fields: string[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    const prefix = `${encodeURIComponent(name)}=`;
    for (const item of typeof value === "string" ? [value] : value) {
      fields.push(prefix + encodeURIComponent(item));
    }
  }
  return fields.join("&");
};

// Back ends that signed an escaped query (twilio-node #1059); the SDK also treats a URL fragment as query here.
const withLegacyQuerystring = (url: string): string => {
  const queryStart = url.indexOf("?");
  if (queryStart === -1 || queryStart === url.length - 1) return url;
  return `${url.slice(0, queryStart)}?${legacyReencode(url.slice(queryStart + 1))}`;
};

function* candidatesInSdkOrder(url: string): Generator<string> {
  // The URL as received is always one of the SDK's first two candidates (whichever port surgery leaves
  // it unchanged); yielding it first means the usual request costs one HMAC per token.
  yield url;
  yield removePort(url);
  yield addPort(url);
  // The SDK throws here on an unparseable URL; treating that as "no more candidates" keeps us total.
  const normalized = URL.parse(url)?.href;
  if (normalized === undefined) return;
  const withoutPort = removePort(normalized);
  const withPort = addPort(normalized);
  yield withoutPort;
  yield withPort;
  yield withLegacyQuerystring(withoutPort);
  yield withLegacyQuerystring(withPort);
}

function* candidateUrls(url: string): Generator<string> {
  const seen = new Set<string>();
  for (const candidate of candidatesInSdkOrder(url)) {
    if (seen.has(candidate)) continue;
    seen.add(candidate);
    yield candidate;
  }
}

/** The URLs twilio@6.2.0's `validateRequest` tries, deduplicated, the URL as received first. */
export const signatureUrlCandidates = (url: string): string[] => [...candidateUrls(url)];

// The SDK compares the header's UTF-8 bytes with the base64 text, so we do too. Decoding the header as
// base64 instead would accept variants the SDK rejects (missing padding, trailing junk).
const sameBytes = (provided: Uint8Array, expected: string): boolean => {
  const expectedBytes = utf8.encode(expected);
  return provided.length === expectedBytes.length && timingSafeEqual(provided, expectedBytes);
};

const bodyHashMatches = (url: string, jsonBody: string): boolean => {
  const claimed = URL.parse(url)?.searchParams.get("bodySHA256");
  if (!claimed) return false;
  const actual = createHash("sha256").update(jsonBody, "utf8").digest("hex");
  return sameBytes(utf8.encode(claimed), actual);
};

/**
 * True when any token signed any candidate URL. Empty tokens are skipped (an empty HMAC key would let
 * anyone forge signatures); a missing or empty signature, or an unparseable URL on the JSON path, is false.
 */
export const verifySignature = (request: SignedRequest, authTokens: readonly string[]): boolean => {
  if (typeof request.signature !== "string" || request.signature === "") return false;
  const provided = utf8.encode(request.signature);
  const tokens = authTokens.filter((token) => typeof token === "string" && token !== "");
  if (tokens.length === 0) return false;
  let suffix = "";
  if ("jsonBody" in request) {
    if (!bodyHashMatches(request.url, request.jsonBody)) return false;
  } else {
    suffix = signedParams(request.params);
  }
  for (const candidate of candidateUrls(request.url)) {
    for (const token of tokens) {
      if (sameBytes(provided, hmacBase64(token, candidate + suffix))) return true;
    }
  }
  return false;
};
