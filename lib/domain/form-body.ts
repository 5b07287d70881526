// Parses `application/x-www-form-urlencoded` webhook bodies into the exact parameter map Twilio signed.
// Blank values and repeated keys are kept because both change X-Twilio-Signature: `Foo=` contributes
// "Foo", and a repeated key (Group-MMS `MessagingBinding.Address`) contributes one entry per value.

export type FormParams = Readonly<Record<string, string | readonly string[]>>;

export class FormBodyError extends Error {
  override name = "FormBodyError";
}

const decodeComponent = (raw: string): string => {
  const spaced = raw.includes("+") ? raw.replaceAll("+", " ") : raw;
  if (!spaced.includes("%")) return spaced;
  // Stricter than URLSearchParams on purpose: it would keep `%zz` literally and turn bytes that are not
  // UTF-8 into U+FFFD, so two different bodies could parse to the same params. Twilio always encodes
  // valid UTF-8, so such a body did not come from Twilio and is rejected (400) instead of guessed at.
  try {
    return decodeURIComponent(spaced);
  } catch (error) {
    throw new FormBodyError("form body has a malformed percent-escape or escapes bytes that are not UTF-8", {
      cause: error,
    });
  }
};

/**
 * Decodes like URLSearchParams (`&` separates pairs, the first `=` splits name from value, `+` is a space,
 * empty pairs are skipped), but throws FormBodyError on malformed escapes and unpaired surrogates.
 * A single occurrence gives a string, a repeated key an array in arrival order. The result has no
 * prototype, so keys like `__proto__` or `constructor` are ordinary own properties.
 */
export const parseFormBody = (body: string): FormParams => {
  if (!body.isWellFormed()) {
    throw new FormBodyError("form body contains an unpaired UTF-16 surrogate");
  }
  const params: Record<string, string | string[]> = Object.create(null);
  let start = 0;
  while (start <= body.length) {
    let end = body.indexOf("&", start);
    if (end === -1) end = body.length;
    if (end > start) {
      // Search for `=` inside the pair only, so a long body of `a&a&a…` stays linear.
      const pair = body.slice(start, end);
      const equals = pair.indexOf("=");
      const name = decodeComponent(equals === -1 ? pair : pair.slice(0, equals));
      const value = equals === -1 ? "" : decodeComponent(pair.slice(equals + 1));
      const existing = params[name];
      if (existing === undefined) params[name] = value;
      else if (typeof existing === "string") params[name] = [existing, value];
      else existing.push(value);
    }
    start = end + 1;
  }
  return params;
};

/** The first value of a field, whether it arrived once or repeated; undefined when absent. */
export const firstValue = (params: FormParams, name: string): string | undefined => {
  if (!Object.hasOwn(params, name)) return undefined;
  const value = params[name];
  return typeof value === "string" ? value : value?.[0];
};
