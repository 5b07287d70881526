// Opt-out / opt-in / help keyword classification for inbound SMS and WhatsApp messages. A message is a
// keyword only when its whole text, normalised, equals a configured keyword: "STOP!" and "ｓｔｏｐ" are,
// "please stop by" is not. Twilio's own `OptOutType` (Advanced Opt-Out matched a keyword) wins over our
// lists, because it reflects what Twilio did with the message (blocked the sender, replied).

export const KeywordIntents = ["opt-out", "opt-in", "help"] as const;
export type KeywordIntent = (typeof KeywordIntents)[number];

export type KeywordLists = {
  readonly optOut: readonly string[];
  readonly optIn: readonly string[];
  readonly help: readonly string[];
};

/**
 * Twilio's default keywords for long codes and toll-free numbers (REVOKE and OPTOUT since 2025-05-14).
 * Twilio blocks/unblocks the sender and replies to these on SMS by itself; the compliance use case
 * relies on that to avoid sending a second confirmation.
 */
export const TwilioDefaultKeywords: KeywordLists = {
  optOut: ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"],
  optIn: ["START", "YES", "UNSTOP"],
  help: ["HELP", "INFO"],
};

export const DefaultKeywords: KeywordLists = TwilioDefaultKeywords;

export type KeywordMatch = {
  readonly intent: KeywordIntent;
  /** The normalised keyword, or Twilio's `OptOutType` value when that decided. */
  readonly keyword: string;
  readonly decidedBy: "twilio-opt-out-type" | "keyword-list";
};

// Leading/trailing characters that never make a word different: whitespace, separators, punctuation,
// symbols (emoji included) and invisible format characters such as ZWJ and the BOM.
const edgeNoise =
  /^[\p{White_Space}\p{Z}\p{P}\p{S}\p{Cf}\p{Cc}]+|[\p{White_Space}\p{Z}\p{P}\p{S}\p{Cf}\p{Cc}]+$/gu;
const combiningMarks = /\p{M}+/gu;
const innerSpace = /[\p{White_Space}\p{Z}]+/gu;

/**
 * The comparable form of a message or a keyword: NFKC folds full-width and compatibility forms ("ＳＴＯＰ"
 * → "STOP"), NFD + dropping combining marks removes accents ("ARRÊT" → "ARRET"), then upper case, edge
 * noise trimmed and inner whitespace collapsed to one space. Both sides go through the same function, so
 * a configured non-Latin keyword still matches itself.
 */
export const normalizeKeyword = (text: string): string =>
  text
    .normalize("NFKC")
    .normalize("NFD")
    .replace(combiningMarks, "")
    .normalize("NFC")
    .toUpperCase()
    .replace(edgeNoise, "")
    .replace(innerSpace, " ");

/** Twilio's `OptOutType` values (Advanced Opt-Out) mapped to intents. */
const optOutTypeIntents: Readonly<Record<string, KeywordIntent>> = {
  STOP: "opt-out",
  START: "opt-in",
  HELP: "help",
};

/** Keyword lists compiled for lookup; build once per tenant at cold start. */
export type KeywordMatcher = {
  readonly lists: KeywordLists;
  classify(body: string | undefined, optOutType?: string | undefined): KeywordMatch | undefined;
  /** True when Twilio itself recognises `keyword` for `intent` on SMS (default lists). */
  isTwilioDefault(intent: KeywordIntent, keyword: string): boolean;
};

export class KeywordConfigError extends Error {
  override name = "KeywordConfigError";
}

const intentOf = (lists: KeywordLists): Map<string, KeywordIntent> => {
  const byKeyword = new Map<string, KeywordIntent>();
  const entries: [KeywordIntent, readonly string[]][] = [
    ["opt-out", lists.optOut],
    ["opt-in", lists.optIn],
    ["help", lists.help],
  ];
  for (const [intent, keywords] of entries) {
    for (const raw of keywords) {
      const keyword = normalizeKeyword(raw);
      if (keyword === "") throw new KeywordConfigError(`keyword "${raw}" is empty once normalised`);
      const existing = byKeyword.get(keyword);
      if (existing !== undefined && existing !== intent) {
        throw new KeywordConfigError(`keyword "${raw}" is configured as both ${existing} and ${intent}`);
      }
      byKeyword.set(keyword, intent);
    }
  }
  return byKeyword;
};

const twilioDefaults = intentOf(TwilioDefaultKeywords);

export const keywordMatcher = (lists: KeywordLists): KeywordMatcher => {
  const byKeyword = intentOf(lists);
  return {
    lists,
    classify(body, optOutType) {
      const normalized = body === undefined ? undefined : normalizeKeyword(body);
      const fromTwilio = optOutType === undefined ? undefined : optOutTypeIntents[optOutType.toUpperCase()];
      if (fromTwilio !== undefined && optOutType !== undefined) {
        // Twilio matched a single word (possibly a custom Advanced Opt-Out one): keep that word as
        // evidence when it looks like one, else Twilio's type.
        const word = normalized !== undefined && /^[^ ]{1,32}$/.test(normalized) ? normalized : undefined;
        return {
          intent: fromTwilio,
          keyword: word ?? optOutType.toUpperCase(),
          decidedBy: "twilio-opt-out-type",
        };
      }
      if (normalized === undefined) return undefined;
      const keyword = normalized;
      const intent = byKeyword.get(keyword);
      return intent === undefined ? undefined : { intent, keyword, decidedBy: "keyword-list" };
    },
    isTwilioDefault(intent, keyword) {
      return twilioDefaults.get(normalizeKeyword(keyword)) === intent;
    },
  };
};

/** Adds extra keywords (other languages) to base lists, keeping order and dropping duplicates. */
export const withExtraKeywords = (base: KeywordLists, extra: Partial<KeywordLists>): KeywordLists => {
  const merge = (a: readonly string[], b: readonly string[] = []) => [...new Set([...a, ...b])];
  return {
    optOut: merge(base.optOut, extra.optOut),
    optIn: merge(base.optIn, extra.optIn),
    help: merge(base.help, extra.help),
  };
};
