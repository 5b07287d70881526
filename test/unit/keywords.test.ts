// Keyword classification: the table of tricky inputs is the specification (whole message only, case,
// punctuation, whitespace, full-width and accented forms), plus configuration and OptOutType.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseComplianceSettings } from "../../lib/config/compliance-config.ts";
import {
  DefaultKeywords,
  KeywordConfigError,
  type KeywordIntent,
  keywordMatcher,
  normalizeKeyword,
  withExtraKeywords,
} from "../../lib/domain/keywords.ts";

const defaults = keywordMatcher(DefaultKeywords);

const cases: readonly [input: string | undefined, expected: KeywordIntent | undefined, keyword?: string][] = [
  ["STOP", "opt-out", "STOP"],
  ["stop", "opt-out", "STOP"],
  ["Stop", "opt-out", "STOP"],
  ["  stop  ", "opt-out", "STOP"],
  ["STOP.", "opt-out", "STOP"],
  ["stop!!!", "opt-out", "STOP"],
  ['"Stop"', "opt-out", "STOP"],
  ["¡stop!", "opt-out", "STOP"],
  ["\nSTOP\r\n", "opt-out", "STOP"],
  ["\u200bSTOP\ufeff", "opt-out", "STOP"],
  ["STOP 🛑", "opt-out", "STOP"],
  ["ＳＴＯＰ", "opt-out", "STOP"],
  ["ｓｔｏｐ", "opt-out", "STOP"],
  ["\u3000STOP\u3000", "opt-out", "STOP"],
  ["stöp", "opt-out", "STOP"],
  ["ŝtop", "opt-out", "STOP"],
  ["unsubscribe", "opt-out", "UNSUBSCRIBE"],
  ["StopAll", "opt-out", "STOPALL"],
  ["cancel", "opt-out", "CANCEL"],
  ["end", "opt-out", "END"],
  ["quit", "opt-out", "QUIT"],
  ["QUİT", "opt-out", "QUIT"],
  ["revoke", "opt-out", "REVOKE"],
  ["optout", "opt-out", "OPTOUT"],
  ["start", "opt-in", "START"],
  ["Yes", "opt-in", "YES"],
  ["YES!", "opt-in", "YES"],
  ["unstop", "opt-in", "UNSTOP"],
  ["help", "help", "HELP"],
  ["Info?", "help", "INFO"],
  // Not keywords: a keyword inside a sentence, two words, inner punctuation, near misses, empty.
  ["please stop by", undefined],
  ["stop please", undefined],
  ["STOP STOP", undefined],
  ["opt out", undefined],
  ["opt-out", undefined],
  ["S T O P", undefined],
  ["stopp", undefined],
  ["sto", undefined],
  ["STOP\nthanks", undefined],
  ["yes please", undefined],
  ["", undefined],
  ["   ", undefined],
  ["!!!", undefined],
  [undefined, undefined],
  ["ARRET", undefined],
];

describe("keyword classification (defaults)", () => {
  for (const [input, expected, keyword] of cases) {
    test(`${JSON.stringify(input)} → ${expected ?? "not a keyword"}`, () => {
      const match = defaults.classify(input);
      assert.equal(match?.intent, expected);
      if (keyword !== undefined) assert.equal(match?.keyword, keyword);
      if (match !== undefined) assert.equal(match.decidedBy, "keyword-list");
    });
  }
});

describe("Twilio OptOutType", () => {
  test("wins over the body: Advanced Opt-Out matched a custom word we do not know", () => {
    const match = defaults.classify("ARRETE", "STOP");
    assert.deepEqual(match, { intent: "opt-out", keyword: "ARRETE", decidedBy: "twilio-opt-out-type" });
  });

  test("START and HELP types map to opt-in and help, case-insensitively", () => {
    assert.equal(defaults.classify("ok", "start")?.intent, "opt-in");
    assert.equal(defaults.classify("aide", "HELP")?.intent, "help");
  });

  test("keeps Twilio's type as the keyword when the body is not a single word", () => {
    assert.equal(defaults.classify(undefined, "STOP")?.keyword, "STOP");
    assert.equal(defaults.classify("no more messages please", "STOP")?.keyword, "STOP");
  });

  test("an unknown OptOutType falls back to the keyword lists", () => {
    assert.equal(defaults.classify("hello", "SOMETHING"), undefined);
    assert.equal(defaults.classify("stop", "SOMETHING")?.intent, "opt-out");
  });
});

describe("configured keyword lists", () => {
  test("extra languages are added to the defaults, normalised the same way", () => {
    const settings = parseComplianceSettings("fr", {
      extraKeywords: { optOut: ["ARRÊT", "parar", "alto"], optIn: ["ARRIBA"], help: ["AIDE"] },
    });
    assert.equal(settings.keywords.classify("arret")?.intent, "opt-out");
    assert.equal(settings.keywords.classify("Arrêt!")?.intent, "opt-out");
    assert.equal(settings.keywords.classify("PARAR")?.intent, "opt-out");
    assert.equal(settings.keywords.classify("¡Alto!")?.intent, "opt-out");
    assert.equal(settings.keywords.classify("aide")?.intent, "help");
    assert.equal(settings.keywords.classify("arriba")?.intent, "opt-in");
    assert.equal(settings.keywords.classify("STOP")?.intent, "opt-out", "defaults kept");
  });

  test("a replaced list drops the defaults of that list only", () => {
    const settings = parseComplianceSettings("t", { keywords: { optIn: ["RESUME"] } });
    assert.equal(settings.keywords.classify("START"), undefined);
    assert.equal(settings.keywords.classify("resume")?.intent, "opt-in");
    assert.equal(settings.keywords.classify("STOP")?.intent, "opt-out");
  });

  test("non-Latin keywords match themselves", () => {
    const matcher = keywordMatcher(withExtraKeywords(DefaultKeywords, { optOut: ["СТОП", "停止"] }));
    assert.equal(matcher.classify("стоп")?.intent, "opt-out");
    assert.equal(matcher.classify("停止。")?.intent, "opt-out");
  });

  test("the same word as two intents is a configuration error", () => {
    assert.throws(
      () => keywordMatcher(withExtraKeywords(DefaultKeywords, { optIn: ["stop"] })),
      KeywordConfigError,
    );
  });

  test("Twilio's default words are known as such (they get Twilio's own SMS reply)", () => {
    const matcher = keywordMatcher(withExtraKeywords(DefaultKeywords, { optOut: ["ARRET"] }));
    assert.equal(matcher.isTwilioDefault("opt-out", "stop"), true);
    assert.equal(matcher.isTwilioDefault("opt-out", "ARRET"), false);
    assert.equal(matcher.isTwilioDefault("opt-in", "STOP"), false);
  });
});

test("normalizeKeyword folds width, accents, case and edge noise but keeps inner words", () => {
  assert.equal(normalizeKeyword("  ｓｔôｐ！ "), "STOP");
  assert.equal(normalizeKeyword("opt\t out"), "OPT OUT");
});
