// The webhook's answer to Conversations pre-action hooks, backed by the suppression store: adding an
// SMS/WhatsApp participant whose address has opted out is rejected (the webhook answers 403) before
// Twilio commits it. One strongly consistent Query per address, bounded by a timeout far inside
// Twilio's 5 s, so agents are refused at once instead of after Twilio gives up and publishes anyway.
// The question is the one `sendOutbound` asks (./consent-suppression-check.ts), so both refuse alike.
//
// Fail-closed: if the store cannot answer in time, the add is refused. A refused add is visible and
// can be retried by the agent; a message to a person who said STOP cannot be taken back.
import type { PreEventDecision, PreEventPolicy } from "../app/ports.ts";
import { parseChannelAddress } from "../domain/consent.ts";
import type { FormParams } from "../domain/form-body.ts";
import { type TenantDirectory, tenantFor } from "../domain/tenants.ts";
import type { ConsentStateReader } from "./consent-store.ts";
import { consentSuppressionCheck } from "./consent-suppression-check.ts";

export type ConsentPreEventPolicyOptions = {
  readonly reader: ConsentStateReader;
  readonly tenants: TenantDirectory;
  /** Longest wait for the store before refusing; default 1 s. */
  readonly timeoutMs?: number;
  /** Sees why the store could not answer (the decision's reason stays generic). */
  readonly onError?: (error: unknown) => void;
};

const allow: PreEventDecision = { allow: true };

// Reasons reach whoever tried the add (an SDK client): they name the rule, never an address or internals.
export const PreEventReasons = {
  optedOut: "participant address has opted out of messages from this sender",
  unavailable: "consent check unavailable; SMS/WhatsApp participants cannot be added right now",
} as const;

const values = (params: FormParams, name: string): readonly string[] => {
  const value = params[name];
  if (value === undefined) return [];
  return typeof value === "string" ? [value] : value;
};

const first = (params: FormParams, name: string): string | undefined => values(params, name)[0] || undefined;

export const consentPreEventPolicy = ({
  reader,
  tenants,
  timeoutMs = 1000,
  onError,
}: ConsentPreEventPolicyOptions): PreEventPolicy => {
  const consent = consentSuppressionCheck({ reader, timeoutMs });
  return {
    async decide(event, params) {
      if (event.eventType !== "onParticipantAdd") return allow;
      const people = values(params, "MessagingBinding.Address")
        .map(parseChannelAddress)
        .filter((person) => person !== undefined);
      // Chat participants (identity, no address) are not subject to messaging consent.
      if (people.length === 0) return allow;
      const proxyRaw =
        first(params, "MessagingBinding.ProxyAddress") ?? first(params, "MessagingBinding.ProjectedAddress");
      const messagingServiceSid = first(params, "MessagingServiceSid");
      const tenantId = tenantFor(tenants, { to: proxyRaw, messagingServiceSid });
      const sender = { proxy: parseChannelAddress(proxyRaw)?.address, messagingServiceSid };
      try {
        const verdicts = await Promise.all(
          people.map((person) => consent.isSuppressed({ tenantId, ...person, sender })),
        );
        return verdicts.includes(true) ? { allow: false, reason: PreEventReasons.optedOut } : allow;
      } catch (error) {
        onError?.(error);
        return { allow: false, reason: PreEventReasons.unavailable };
      }
    },
  };
};
