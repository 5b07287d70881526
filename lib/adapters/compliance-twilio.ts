// ConsentMessaging on the real twilio SDK (Conversations v1 + Messages 2010-04-01). Every failure is
// normalised to TwilioApiError by `callTwilio`, so the use case retries and classifies by error code;
// the two codes that mean "already the state we want" are answered here: 20404 on removing a
// participant (already gone) and 21610 on sending a reply (Twilio blocks the sender and replied itself).
import type { ConsentMessaging, ParticipantBinding } from "../app/compliance.ts";
import { hasTwilioCode, TwilioErrorCode } from "../domain/twilio-errors.ts";
import { callTwilio, type TwilioClient } from "./twilio-client.ts";

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const stringField = (record: Record<string, unknown>, ...names: string[]): string | undefined => {
  for (const name of names) {
    const value = record[name];
    if (typeof value === "string" && value !== "") return value;
  }
  return undefined;
};

/**
 * The SDK passes `messaging_binding` through untyped (`any`) and without renaming its keys, so read
 * both spellings defensively.
 */
const bindingAddresses = (
  binding: unknown,
): { readonly address: string | undefined; readonly proxyAddress: string | undefined } => {
  if (!isRecord(binding)) return { address: undefined, proxyAddress: undefined };
  return {
    address: stringField(binding, "address"),
    proxyAddress: stringField(
      binding,
      "proxy_address",
      "proxyAddress",
      "projected_address",
      "projectedAddress",
    ),
  };
};

/** Participant listings are paged by the SDK; 50 is the API's maximum page size for this resource. */
const PageSize = 50;

export const twilioConsentMessaging = (client: () => Promise<TwilioClient>): ConsentMessaging => {
  const messagingServiceOf = async (conversationSid: string): Promise<string | undefined> => {
    const twilio = await client();
    const conversation = await callTwilio("fetch conversation", () =>
      twilio.conversations.v1.conversations(conversationSid).fetch(),
    );
    return conversation.messagingServiceSid || undefined;
  };

  return {
    async conversationsOf(address) {
      const twilio = await client();
      const rows = await callTwilio("list participant conversations", () =>
        twilio.conversations.v1.participantConversations.list({ address, pageSize: PageSize }),
      );
      const open = rows.filter((row) => row.conversationState !== "closed");
      // The listing has no Messaging Service; one read per open conversation (reads do not count
      // against Twilio's 30 actions/s) tells which sender pool each conversation belongs to.
      return Promise.all(
        open.map(async (row): Promise<ParticipantBinding> => {
          const { address: bound, proxyAddress } = bindingAddresses(row.participantMessagingBinding);
          return {
            conversationSid: row.conversationSid,
            participantSid: row.participantSid,
            address: bound ?? address,
            proxyAddress,
            messagingServiceSid: await messagingServiceOf(row.conversationSid),
          };
        }),
      );
    },

    async participant(conversationSid, participantSid) {
      const twilio = await client();
      try {
        const participant = await callTwilio("fetch participant", () =>
          twilio.conversations.v1.conversations(conversationSid).participants(participantSid).fetch(),
        );
        const { address, proxyAddress } = bindingAddresses(participant.messagingBinding);
        return {
          conversationSid,
          participantSid,
          address,
          proxyAddress,
          messagingServiceSid: await messagingServiceOf(conversationSid),
        };
      } catch (error) {
        if (hasTwilioCode(error, TwilioErrorCode.notFound)) return undefined;
        throw error;
      }
    },

    async removeParticipant(conversationSid, participantSid) {
      const twilio = await client();
      try {
        await callTwilio("remove participant", () =>
          twilio.conversations.v1.conversations(conversationSid).participants(participantSid).remove(),
        );
        return "removed";
      } catch (error) {
        if (hasTwilioCode(error, TwilioErrorCode.notFound)) return "already-gone";
        throw error;
      }
    },

    async postNotice(conversationSid, body, attributes) {
      const twilio = await client();
      // No X-Twilio-Webhook-Enabled: a REST-posted message fires no webhook, so this never loops back.
      await callTwilio("post system message", () =>
        twilio.conversations.v1
          .conversations(conversationSid)
          .messages.create({ author: "system", body, attributes: JSON.stringify(attributes) }),
      );
    },

    async sendText({ from, to, body }) {
      const twilio = await client();
      try {
        await callTwilio("send message", () => twilio.messages.create({ from, to, body }));
        return "sent";
      } catch (error) {
        if (hasTwilioCode(error, TwilioErrorCode.optedOut)) return "blocked";
        throw error;
      }
    },
  };
};
