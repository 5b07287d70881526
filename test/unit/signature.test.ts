// Known-answer vectors from twilio-node's spec/validation.spec.js, plus "sign a valid request, then break
// one thing" cases. Signatures in the breakage cases come from an independent HMAC helper below, not from
// the module under test.

import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { describe, it } from "node:test";
import type { FormParams } from "../../lib/domain/form-body.ts";
import {
  expectedSignature,
  type SignedRequest,
  signatureUrlCandidates,
  verifySignature,
} from "../../lib/domain/signature.ts";

const token = "12345";
const defaultParams = {
  CallSid: "CA1234567890ABCDE",
  Caller: "+14158675309",
  Digits: "1234",
  From: "+14158675309",
  To: "+18005551212",
};
const requestUrl = "https://mycompany.com/myapp.php?foo=1&bar=2";
const jsonBody = '{"property": "value", "boolean": true}';
const jsonBodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const emptyJsonBodyHash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/** Twilio's algorithm for single-valued params, written out independently of the module under test. */
const sign = (authToken: string, url: string, params: Readonly<Record<string, string>> = {}): string => {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, key) => acc + key + params[key], url);
  return createHmac("sha1", authToken).update(data, "utf8").digest("base64");
};

describe("twilio-node known-answer vectors", () => {
  type FormVector = { name: string; url: string; params: FormParams; signature: string; signedUrl: string };
  const formVectors: FormVector[] = [
    {
      name: "1: correct signature",
      url: requestUrl,
      params: defaultParams,
      signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
      signedUrl: requestUrl,
    },
    {
      name: "2: https with non-standard port, signed without it",
      url: "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
      params: defaultParams,
      signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
      signedUrl: requestUrl,
    },
    {
      name: "3: http with non-standard port, signed with it",
      url: "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
      params: defaultParams,
      signature: "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
      signedUrl: "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
    },
    {
      name: "4: https without port, signed with :443",
      url: requestUrl,
      params: defaultParams,
      signature: "kvajT1Ptam85bY51eRf/AJRuM3w=",
      signedUrl: "https://mycompany.com:443/myapp.php?foo=1&bar=2",
    },
    {
      name: "5: http without port, signed with :80",
      url: "http://mycompany.com/myapp.php?foo=1&bar=2",
      params: defaultParams,
      signature: "0ZXoZLH/DfblKGATFgpif+LLRf4=",
      signedUrl: "http://mycompany.com:80/myapp.php?foo=1&bar=2",
    },
    {
      name: "6: credentials in the URL",
      url: "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
      params: defaultParams,
      signature: "CukzLTc1tT5dXEDIHm/tKBanW10=",
      signedUrl: "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
    },
    {
      name: "7: special characters, signed with `'` escaped",
      url: `${requestUrl}&Body=It's+amazing`,
      params: defaultParams,
      signature: "TfZzewPq8wqrGlMfyAud8+/IvJ0=",
      signedUrl: `${requestUrl}&Body=It%27s+amazing`,
    },
    {
      name: "8a: array parameter",
      url: requestUrl,
      params: { "MessagingBinding.Address": ["+1325xxxxxxx", "+1415xxxxxxx"] },
      signature: "83O6e2vORAoJHUNzJjDWN1jz+BA=",
      signedUrl: requestUrl,
    },
    {
      name: "8b: array parameter in the other order",
      url: requestUrl,
      params: { "MessagingBinding.Address": ["+1415xxxxxxx", "+1325xxxxxxx"] },
      signature: "83O6e2vORAoJHUNzJjDWN1jz+BA=",
      signedUrl: requestUrl,
    },
    {
      name: "9: multiple params with duplicate array values",
      url: requestUrl,
      params: { Sid: "CA123", SidAccount: "AC123", Digits: ["5678", "1234", "1234"] },
      signature: "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
      signedUrl: requestUrl,
    },
    {
      name: "extra: credentials, signed with :443",
      url: "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
      params: defaultParams,
      signature: "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
      signedUrl: "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2",
    },
    {
      name: "extra: username only",
      url: "https://user@mycompany.com/myapp.php?foo=1&bar=2",
      params: defaultParams,
      signature: "2YRLlVAflCqxaNicjMpJcSTgzSs=",
      signedUrl: "https://user@mycompany.com/myapp.php?foo=1&bar=2",
    },
    {
      // Newer twilio-node spec (after PR #1194) expects the URL exactly as received for vector 7.
      name: "extra: special characters, signed as received",
      url: `${requestUrl}&Body=It's+amazing`,
      params: defaultParams,
      signature: "dsq4Ehbj6cs+KdTkpF5sSSplOWw=",
      signedUrl: `${requestUrl}&Body=It's+amazing`,
    },
  ];
  for (const { name, url, params, signature, signedUrl } of formVectors) {
    it(name, () => {
      assert.equal(expectedSignature(token, signedUrl, params), signature);
      assert.equal(verifySignature({ url, signature, params }, [token]), true);
      assert.equal(verifySignature({ url, signature, params }, ["54321"]), false);
    });
  }

  type JsonVector = { name: string; url: string; body: string; signature: string; signedUrl: string };
  const jsonVectors: JsonVector[] = [
    {
      name: "10: JSON body",
      url: `${requestUrl}&bodySHA256=${jsonBodyHash}`,
      body: jsonBody,
      signature: "a9nBmqA0ju/hNViExpshrM61xv4=",
      signedUrl: `${requestUrl}&bodySHA256=${jsonBodyHash}`,
    },
    {
      name: "11: empty JSON object, signed with :443",
      url: `${requestUrl}&bodySHA256=${emptyJsonBodyHash}`,
      body: "{}",
      signature: "Ldidvp12m26NI7eqEvxnEpkd9Hc=",
      signedUrl: `https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=${emptyJsonBodyHash}`,
    },
    {
      name: "12: bodySHA256 is the only query param",
      url: `https://mycompany.com/myapp.php?bodySHA256=${jsonBodyHash}`,
      body: jsonBody,
      signature: "y77kIzt2vzLz71DgmJGsen2scGs=",
      signedUrl: `https://mycompany.com/myapp.php?bodySHA256=${jsonBodyHash}`,
    },
  ];
  for (const { name, url, body, signature, signedUrl } of jsonVectors) {
    it(name, () => {
      assert.equal(
        createHash("sha256").update(body).digest("hex"),
        new URL(url).searchParams.get("bodySHA256"),
      );
      assert.equal(expectedSignature(token, signedUrl, {}), signature);
      assert.equal(verifySignature({ url, signature, jsonBody: body }, [token]), true);
      assert.equal(verifySignature({ url, signature, jsonBody: `${body} ` }, [token]), false);
    });
  }

  it("rejects a JSON body when the URL has no bodySHA256", () => {
    const request = { url: requestUrl, signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8=", jsonBody };
    assert.equal(verifySignature(request, [token]), false);
  });

  it("rejects the literal WRONG_SIGNATURE", () => {
    const request = { url: requestUrl, signature: "WRONG_SIGNATURE", params: defaultParams };
    assert.equal(verifySignature(request, [token]), false);
  });
});

describe("twilio-node #1183: `+` and `'` in the same query", () => {
  const url = "https://example.com/cb?name=William+O'hara";
  it("validates when Twilio signed the URL exactly as received", () => {
    assert.equal(verifySignature({ url, signature: sign("s3cr3t", url), params: {} }, ["s3cr3t"]), true);
  });
  it("is not one of the re-encoded candidates the pre-6.2 SDK tried", () => {
    const normalizedOnly = signatureUrlCandidates(url).slice(2);
    assert.ok(normalizedOnly.length > 0);
    assert.ok(!normalizedOnly.includes(url));
  });
});

describe("sign a valid request, then break one thing", () => {
  const url = "https://hooks.example.com/twilio/conversations?route=post";
  const params = { EventType: "onMessageAdded", Body: "Hi 😀 it's me", Author: "+14155550100", Media: "" };
  const signature = sign(token, url, params);
  const valid: SignedRequest = { url, signature, params };
  const check = (request: SignedRequest, tokens: readonly string[] = [token]) =>
    verifySignature(request, tokens);

  it("the unbroken request passes (so each case below fails for its own reason)", () => {
    assert.equal(check(valid), true);
    assert.equal(expectedSignature(token, url, params), signature);
  });

  const flip = (text: string, index: number) =>
    text.slice(0, index) + (text[index] === "A" ? "B" : "A") + text.slice(index + 1);
  const broken: ReadonlyArray<[string, SignedRequest]> = [
    ["first signature char flipped", { ...valid, signature: flip(signature, 0) }],
    ["middle signature char flipped", { ...valid, signature: flip(signature, 13) }],
    ["padding dropped from the signature", { ...valid, signature: signature.slice(0, -1) }],
    ["signature with trailing junk", { ...valid, signature: `${signature}x` }],
    ["signature with surrounding space", { ...valid, signature: ` ${signature}` }],
    [
      "signature in hex instead of base64",
      { ...valid, signature: Buffer.from(signature, "base64").toString("hex") },
    ],
    ["one param value changed", { ...valid, params: { ...params, Body: "Hi 😀 it's me!" } }],
    ["param value case changed", { ...valid, params: { ...params, EventType: "onmessageadded" } }],
    ["param dropped", { ...valid, params: { EventType: params.EventType, Body: params.Body, Media: "" } }],
    [
      "blank param dropped",
      { ...valid, params: { EventType: params.EventType, Body: params.Body, Author: params.Author } },
    ],
    ["param added", { ...valid, params: { ...params, Extra: "1" } }],
    ["blank param added", { ...valid, params: { ...params, Extra: "" } }],
    [
      "param name case changed",
      {
        ...valid,
        params: { EventType: params.EventType, Body: params.Body, author: params.Author, Media: "" },
      },
    ],
    ["single value sent as a repeated key", { ...valid, params: { ...params, Media: ["", "x"] } }],
    ["URL path changed", { ...valid, url: url.replace("/conversations", "/conversation") }],
    ["URL query value changed", { ...valid, url: url.replace("route=post", "route=pre") }],
    ["URL query removed", { ...valid, url: url.replace("?route=post", "") }],
    ["URL query param added", { ...valid, url: `${url}&x=1` }],
    ["URL scheme changed", { ...valid, url: url.replace("https:", "http:") }],
    ["URL host changed", { ...valid, url: url.replace("hooks.", "evil.") }],
    ["URL path case changed", { ...valid, url: url.replace("/twilio/", "/Twilio/") }],
    ["URL trailing slash added", { ...valid, url: url.replace("?", "/?") }],
    ["URL with a fragment Twilio never sends", { ...valid, url: `${url}#frag` }],
    ["signature missing", { ...valid, signature: undefined }],
    ["signature empty", { ...valid, signature: "" }],
    ["form signature presented as a JSON body request", { url, signature, jsonBody: "{}" }],
  ];
  for (const [name, request] of broken) {
    it(name, () => assert.equal(check(request), false));
  }

  it("wrong token", () => assert.equal(check(valid, ["54321"]), false));
  it("no tokens configured", () => assert.equal(check(valid, []), false));
  it("an empty token never verifies, even for a signature made with an empty key", () => {
    assert.equal(check({ url, params, signature: sign("", url, params) }, [""]), false);
  });

  it("host case: WHATWG normalization lower-cases a received host, as the SDK does", () => {
    assert.equal(check({ ...valid, url: url.replace("hooks.example.com", "Hooks.Example.COM") }), true);
    const upperSigned = "https://Hooks.Example.COM/twilio/conversations?route=post";
    assert.equal(check({ url, params, signature: sign(token, upperSigned, params) }), false);
  });

  it("port: received with a non-standard port, signed without it", () => {
    assert.equal(check({ ...valid, url: url.replace(".com/", ".com:8443/") }), true);
  });
  it("port: received with a non-standard port, signed with it", () => {
    const withPort = url.replace(".com/", ".com:8443/");
    assert.equal(check({ url: withPort, params, signature: sign(token, withPort, params) }), true);
  });
  it("port: signed with a different non-standard port", () => {
    const signed = url.replace(".com/", ".com:9443/");
    const received = url.replace(".com/", ".com:8443/");
    assert.equal(check({ url: received, params, signature: sign(token, signed, params) }), false);
  });

  describe("multiple tokens (rotation)", () => {
    const secondary = "secondary-token";
    const signedBySecondary = { ...valid, signature: sign(secondary, url, params) };
    it("primary fails, secondary passes", () =>
      assert.equal(check(signedBySecondary, [token, secondary]), true));
    it("passes whatever the list order", () =>
      assert.equal(check(signedBySecondary, [secondary, token]), true));
    it("fails when the signing token is not in the list", () => {
      assert.equal(check(signedBySecondary, [token, "another"]), false);
    });
    it("an empty token in the list does not stop the others", () => {
      assert.equal(check(signedBySecondary, ["", secondary]), true);
    });
  });

  describe("repeated keys", () => {
    const repeated = { To: "+1", "MessagingBinding.Address": ["+1415", "+1325", "+1415"] };
    const repeatedSignature = createHmac("sha1", token)
      .update(`${url}MessagingBinding.Address+1325MessagingBinding.Address+1415To+1`)
      .digest("base64");
    it("values are de-duplicated and sorted before signing", () => {
      assert.equal(check({ url, params: repeated, signature: repeatedSignature }), true);
    });
    it("a lost value fails", () => {
      const lost = { To: "+1", "MessagingBinding.Address": "+1415" };
      assert.equal(check({ url, params: lost, signature: repeatedSignature }), false);
    });
  });

  describe("JSON bodies", () => {
    const body = '{"EventType":"onMessageAdded"}';
    const hash = createHash("sha256").update(body).digest("hex");
    const jsonUrl = `${url}&bodySHA256=${hash}`;
    const jsonSigned: SignedRequest = { url: jsonUrl, signature: sign(token, jsonUrl), jsonBody: body };
    it("valid request passes", () => assert.equal(check(jsonSigned), true));
    it("body changed", () =>
      assert.equal(check({ ...jsonSigned, jsonBody: body.replace("Added", "Removed") }), false));
    it("hash in upper-case hex", () => {
      const upper = `${url}&bodySHA256=${hash.toUpperCase()}`;
      assert.equal(check({ url: upper, signature: sign(token, upper), jsonBody: body }), false);
    });
    it("hash of another body, correctly signed", () => {
      const other = `${url}&bodySHA256=${createHash("sha256").update("{}").digest("hex")}`;
      assert.equal(check({ url: other, signature: sign(token, other), jsonBody: body }), false);
    });
    it("URL signature wrong", () =>
      assert.equal(check({ ...jsonSigned, signature: sign("54321", jsonUrl) }), false));
    it("unparseable URL is false, not a throw", () => {
      const bad = `https://exa mple.com/?bodySHA256=${hash}`;
      assert.equal(check({ url: bad, signature: sign(token, bad), jsonBody: body }), false);
    });
  });
});

describe("weird input never throws", () => {
  const urls = [
    "",
    "not a url",
    "https://",
    "https://[::1",
    "//no-scheme/path?x=1",
    "https://exa mple.com/?q=\ud800",
  ];
  for (const url of urls) {
    it(JSON.stringify(url), () => {
      assert.equal(
        verifySignature({ url, signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8=", params: {} }, [token]),
        false,
      );
      assert.ok(signatureUrlCandidates(url).length >= 1);
    });
  }
  it("an unparseable URL still verifies when signed exactly as received", () => {
    const url = "https://exa mple.com/hook?x=1";
    assert.equal(verifySignature({ url, signature: sign(token, url), params: {} }, [token]), true);
  });
  it("a non-ASCII signature header", () => {
    const request = { url: requestUrl, signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8é", params: defaultParams };
    assert.equal(verifySignature(request, [token]), false);
  });
});

describe("signatureUrlCandidates", () => {
  it("a plain URL costs at most two HMACs: as received, then with the default port", () => {
    assert.deepEqual(signatureUrlCandidates(requestUrl), [
      requestUrl,
      "https://mycompany.com:443/myapp.php?foo=1&bar=2",
    ]);
  });
  it("lists the SDK's candidates in its order, the URL as received first", () => {
    assert.deepEqual(signatureUrlCandidates("http://user@Host.example:8080/a b/?q=It's+ok&r=%7e"), [
      "http://user@Host.example:8080/a b/?q=It's+ok&r=%7e",
      "http://user@Host.example/a b/?q=It's+ok&r=%7e",
      "http://user@host.example/a%20b/?q=It%27s+ok&r=%7e",
      "http://user@host.example:8080/a%20b/?q=It%27s+ok&r=%7e",
      "http://user@host.example/a%20b/?q=It's%20ok&r=~",
      "http://user@host.example:8080/a%20b/?q=It's%20ok&r=~",
    ]);
  });
  it("keeps an IPv6 literal's colons out of the port", () => {
    assert.deepEqual(signatureUrlCandidates("https://[::1]/x"), ["https://[::1]/x", "https://[::1]:443/x"]);
  });
  it("an unparseable URL yields only the as-received candidates", () => {
    assert.deepEqual(signatureUrlCandidates("https://exa mple.com:8443/"), [
      "https://exa mple.com:8443/",
      "https://exa mple.com/",
    ]);
  });
});
