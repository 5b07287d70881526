// Known-answer table for the webhook form-body parser: what Twilio signs depends on blank values,
// repeated keys and exact decoding, and malformed bodies must be rejected rather than guessed at.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FormBodyError, firstValue, parseFormBody } from "../../lib/domain/form-body.ts";

// Entries compare order-sensitively, so array values also pin the arrival order.
const entries = (body: string) => Object.entries(parseFormBody(body));

describe("parseFormBody", () => {
  const cases: ReadonlyArray<{ name: string; body: string; expected: [string, string | string[]][] }> = [
    { name: "empty body", body: "", expected: [] },
    { name: "single pair", body: "Body=hi", expected: [["Body", "hi"]] },
    {
      name: "blank value is kept",
      body: "Foo=&Bar=1",
      expected: [
        ["Foo", ""],
        ["Bar", "1"],
      ],
    },
    {
      name: "name without `=` is a blank value",
      body: "Foo&Bar=1",
      expected: [
        ["Foo", ""],
        ["Bar", "1"],
      ],
    },
    {
      name: "empty pairs are skipped",
      body: "a&&b=",
      expected: [
        ["a", ""],
        ["b", ""],
      ],
    },
    { name: "leading and trailing `&`", body: "&a=1&", expected: [["a", "1"]] },
    { name: "empty name", body: "=x", expected: [["", "x"]] },
    { name: "only `=`", body: "=", expected: [["", ""]] },
    { name: "only the first `=` splits", body: "a=b=c", expected: [["a", "b=c"]] },
    { name: "`+` is a space", body: "Body=It's+amazing", expected: [["Body", "It's amazing"]] },
    { name: "`%2B` is a plus", body: "From=%2B14155550100", expected: [["From", "+14155550100"]] },
    { name: "`+` in a name is a space", body: "a+b=1", expected: [["a b", "1"]] },
    { name: "lower-case escapes", body: "x=%c3%a9", expected: [["x", "é"]] },
    { name: "escaped `&` and `=` stay in the value", body: "q=a%26b%3Dc", expected: [["q", "a&b=c"]] },
    { name: "escaped name", body: "Messaging%2EBinding=1", expected: [["Messaging.Binding", "1"]] },
    { name: "UTF-8 escapes (emoji)", body: "Body=%F0%9F%98%80+ok", expected: [["Body", "😀 ok"]] },
    { name: "raw unicode passes through", body: "Body=héllo😀", expected: [["Body", "héllo😀"]] },
    {
      name: "repeated key becomes an array in arrival order",
      body: "MessagingBinding.Address=%2B1415&MessagingBinding.Address=%2B1325&To=x",
      expected: [
        ["MessagingBinding.Address", ["+1415", "+1325"]],
        ["To", "x"],
      ],
    },
    {
      name: "repeated blank and duplicate values are kept",
      body: "k=&k=a&k=a",
      expected: [["k", ["", "a", "a"]]],
    },
    {
      name: "names are case-sensitive",
      body: "a=1&A=2",
      expected: [
        ["a", "1"],
        ["A", "2"],
      ],
    },
  ];
  for (const { name, body, expected } of cases) {
    it(name, () => assert.deepEqual(entries(body), expected));
  }

  it("matches URLSearchParams on well-formed bodies", () => {
    const body = "To=%2B1&Body=Hello+W%C3%B6rld%21&a&&=z&Media=1&Media=2&Media=1";
    const viaSearchParams = new Map<string, string[]>();
    for (const [key, value] of new URLSearchParams(body)) {
      viaSearchParams.set(key, [...(viaSearchParams.get(key) ?? []), value]);
    }
    const expected = [...viaSearchParams].map(([key, values]) => [
      key,
      values.length === 1 ? values[0] : values,
    ]);
    assert.deepEqual(entries(body), expected);
  });

  describe("prototype keys are plain data", () => {
    for (const key of ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"]) {
      it(key, () => {
        const params = parseFormBody(`${key}=evil&${key}=twice&x=1`);
        assert.deepEqual(Object.getOwnPropertyDescriptor(params, key)?.value, ["evil", "twice"]);
        assert.equal(Object.getPrototypeOf(params), null);
        assert.deepEqual(Object.keys(params), [key, "x"]);
      });
    }
  });

  describe("rejects malformed bodies with FormBodyError", () => {
    const malformed = [
      ["non-hex escape", "a=%zz"],
      ["truncated escape", "a=%4"],
      ["lone percent", "a=100%"],
      ["escape in the name", "%zz=1"],
      ["invalid UTF-8 byte", "a=%FF"],
      ["truncated UTF-8 sequence", "a=%C3"],
      ["overlong encoding", "a=%C0%AF"],
      ["encoded surrogate half", "a=%ED%A0%80"],
      ["raw unpaired surrogate", "a=\ud800"],
    ] as const;
    for (const [name, body] of malformed) {
      it(name, () => assert.throws(() => parseFormBody(body), { name: "FormBodyError" }));
    }
    it("forwards the decoder error as cause", () => {
      assert.throws(
        () => parseFormBody("a=%zz"),
        (error: unknown) => error instanceof FormBodyError && error.cause instanceof URIError,
      );
    });
  });

  it("stays linear on a long body of pairs without `=`", () => {
    const body = "a&".repeat(200_000);
    const started = performance.now();
    assert.deepEqual(firstValue(parseFormBody(body), "a"), "");
    assert.ok(performance.now() - started < 1_000);
  });
});

describe("firstValue", () => {
  const params = parseFormBody("One=1&Many=a&Many=b&Blank=");
  it("returns a single value", () => assert.equal(firstValue(params, "One"), "1"));
  it("returns the first of repeated values", () => assert.equal(firstValue(params, "Many"), "a"));
  it("returns a blank value", () => assert.equal(firstValue(params, "Blank"), ""));
  it("returns undefined for a missing field", () => assert.equal(firstValue(params, "Missing"), undefined));
  it("ignores inherited properties of ordinary objects", () => {
    assert.equal(firstValue({ a: "1" }, "constructor"), undefined);
    assert.equal(firstValue({ a: "1" }, "toString"), undefined);
  });
});
