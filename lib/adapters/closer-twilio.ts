// The closer's view of Twilio Conversations: read the newest message (the just-before-close re-check),
// post the closing notice, close. Calls go to `/v1/Conversations/{sid}` (the account's default
// Conversations service). REST actions fire no post-event webhooks unless asked to, so neither the notice
// nor the close loops back through the mirror; the closer records the outcome in the registry itself.
// Failures surface as TwilioApiError; the use case classifies them by code.
import type { ConversationCloser } from "../app/closer.ts";
import type { LatestMessage } from "../domain/closer.ts";
import { callTwilio, type TwilioClient } from "./twilio-client.ts";

export const twilioConversationCloser = (client: () => Promise<TwilioClient>): ConversationCloser => ({
  async latestMessage(conversationSid: string): Promise<LatestMessage | undefined> {
    const twilio = await client();
    const page = await callTwilio("fetch latest message", () =>
      twilio.conversations.v1.conversations(conversationSid).messages.page({ order: "desc", pageSize: 1 }),
    );
    const [latest] = page.instances;
    if (latest === undefined) return undefined;
    // An unreadable date becomes NaN, which the domain never counts as idle: when unsure, do not close.
    const at = latest.dateCreated instanceof Date ? latest.dateCreated.getTime() : Number.NaN;
    return { at, attributes: latest.attributes ?? undefined };
  },

  async postNotice(conversationSid: string, notice: { body: string; attributes: string }): Promise<void> {
    const twilio = await client();
    await callTwilio("post closing notice", () =>
      twilio.conversations.v1
        .conversations(conversationSid)
        .messages.create({ author: "system", body: notice.body, attributes: notice.attributes }),
    );
  },

  async close(conversationSid: string): Promise<void> {
    const twilio = await client();
    await callTwilio("close conversation", () =>
      twilio.conversations.v1.conversations(conversationSid).update({ state: "closed" }),
    );
  },
});
