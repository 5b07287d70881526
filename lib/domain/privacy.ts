// What may be shown about a person outside the consent and conversation stores: their address masked,
// for log lines and for error messages that callers may log in turn.

/**
 * Masks a phone number or channel address: keeps the channel prefix, the country code area and the last
 * two digits ("whatsapp:+4479••••••12"), enough to correlate, not enough to identify.
 */
export const maskAddress = (address: string | undefined): string | undefined => {
  if (address === undefined) return undefined;
  const match = /^([a-z]+:)?(\+?\d{0,4})(\d*?)(\d{0,2})$/.exec(address);
  if (!match) return address.length <= 4 ? "••••" : `${address.slice(0, 2)}••••`;
  const [, channel = "", head = "", middle = "", tail = ""] = match;
  return `${channel}${head}${"•".repeat(middle.length)}${tail}`;
};
