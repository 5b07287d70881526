// "Has this person opted out of this sender?", asked of the consent table before contacting them: one
// strongly consistent read of their suppression states, decided by the domain's `suppressionFor` with
// the parts of the sender the caller cannot name assumed to be ones the person opted out of. Both the
// project's own send path (`sendOutbound`) and the webhook's onParticipantAdd check use it, so they
// refuse exactly the same people. It answers or rejects; failing closed is the caller's decision.
import type { RecipientConsent } from "../app/mirror/ports.ts";
import { suppressionFor } from "../domain/consent.ts";
import type { ConsentStateReader } from "./consent-store.ts";

export type ConsentSuppressionCheckOptions = {
  readonly reader: ConsentStateReader;
  /** Longest wait for the store before the check rejects; only the SDK's own limits when absent. */
  readonly timeoutMs?: number;
};

export const consentSuppressionCheck = ({
  reader,
  timeoutMs,
}: ConsentSuppressionCheckOptions): RecipientConsent => ({
  async isSuppressed({ tenantId, channel, address, sender }) {
    const states = await reader.states(
      { tenant: tenantId, channel, address },
      timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) },
    );
    // A pre-event hook names our number but not its Messaging Service; a send may name only the service
    // and let Twilio pick the number. Refusing a legitimate contact is recoverable, messaging an
    // opted-out person is not.
    return suppressionFor(states, sender, { unknownMayApply: true }) !== undefined;
  },
});
