// The mirror's Twilio port on the real `twilio` SDK: Conversations v1 for threads, participants and
// messages, and the 2010-04-01 Messages API for outbound sends. The conflict codes the use case
// branches on become results (50353 name-taken, 50416 bound-elsewhere, 50433/50437 already-bound,
// 50377 closed, 20404 gone); every other failure is thrown as TwilioApiError for the caller to classify.
// `X-Twilio-Webhook-Enabled` is never sent, so nothing posted here fires Conversations webhooks.
import type { MirrorTwilio, OutboundSend, ThreadState, UpdateResult } from "../app/mirror/ports.ts";
import { parseAttributes, type ThreadMessage } from "../domain/mirror.ts";
import { conflictingConversationSid, hasTwilioCode, TwilioErrorCode } from "../domain/twilio-errors.ts";
import { callTwilio, type TwilioClient } from "./twilio-client.ts";

const threadStates: readonly ThreadState[] = ["initializing", "active", "inactive", "closed"];
const stateOf = (value: unknown): ThreadState => threadStates.find((state) => state === value) ?? "active";

const isNotFound = (error: unknown): boolean => hasTwilioCode(error, TwilioErrorCode.notFound);

const orUndefined = async <T>(call: Promise<T>): Promise<T | undefined> => {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
};

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : undefined;

/** ParticipantConversations returns the binding as raw JSON (snake_case). */
const proxyOf = (binding: unknown): string | undefined => {
  if (typeof binding !== "object" || binding === null) return undefined;
  const record = binding as Record<string, unknown>;
  return text(record.proxy_address) ?? text(record.proxyAddress);
};

/** A participant's `messaging_binding` is raw JSON too (`{type, address, proxy_address}`). */
const addressOf = (binding: unknown): string | undefined => {
  if (typeof binding !== "object" || binding === null) return undefined;
  return text((binding as Record<string, unknown>).address);
};

/** ParticipantConversations pages hold at most 50; a customer with a long history has many closed ones. */
const BindingLookupLimit = 200;
/** A conversation holds at most 50 SMS/WhatsApp participants but up to 1,000 in all (chat users). */
const ParticipantLookupLimit = 1_000;

/** 50377 (closed) and 20404 (deleted) as results of an update. */
const updateOutcome = async (call: () => Promise<unknown>): Promise<UpdateResult> => {
  try {
    await call();
    return "updated";
  } catch (error) {
    if (hasTwilioCode(error, TwilioErrorCode.closedConversationImmutable)) return "thread-closed";
    if (isNotFound(error)) return "gone";
    throw error;
  }
};

export const twilioMirrorPort = (client: () => Promise<TwilioClient>): MirrorTwilio => {
  const conversations = async () => (await client()).conversations.v1;

  return {
    async createThread(input) {
      const timed = input.timers.inactive !== undefined || input.timers.closed !== undefined;
      try {
        const created = await callTwilio("create conversation", async () =>
          (await conversations()).conversations.create({
            uniqueName: input.uniqueName,
            attributes: input.attributes,
            ...(input.messagingServiceSid === undefined
              ? {}
              : { messagingServiceSid: input.messagingServiceSid }),
            // Twilio rejects timers without an explicit State (50382).
            ...(timed ? { state: "active" as const } : {}),
            ...(input.timers.inactive === undefined ? {} : { "timers.inactive": input.timers.inactive }),
            ...(input.timers.closed === undefined ? {} : { "timers.closed": input.timers.closed }),
          }),
        );
        return { kind: "created", conversationSid: created.sid };
      } catch (error) {
        if (hasTwilioCode(error, TwilioErrorCode.uniqueNameExists)) return { kind: "name-taken" };
        throw error;
      }
    },

    async fetchThread(sidOrUniqueName) {
      const found = await orUndefined(
        callTwilio("fetch conversation", async () =>
          (await conversations()).conversations(sidOrUniqueName).fetch(),
        ),
      );
      if (found === undefined) return undefined;
      return { conversationSid: found.sid, uniqueName: text(found.uniqueName), state: stateOf(found.state) };
    },

    async deleteThread(conversationSid) {
      await orUndefined(
        callTwilio("delete conversation", async () =>
          (await conversations()).conversations(conversationSid).remove(),
        ),
      );
    },

    async addCustomer(conversationSid, binding) {
      try {
        await callTwilio("add participant", async () =>
          (await conversations()).conversations(conversationSid).participants.create({
            "messagingBinding.address": binding.address,
            "messagingBinding.proxyAddress": binding.proxyAddress,
          }),
        );
        return { kind: "bound" };
      } catch (error) {
        if (hasTwilioCode(error, TwilioErrorCode.participantExists, TwilioErrorCode.groupParticipantExists)) {
          return { kind: "already-bound" };
        }
        if (hasTwilioCode(error, TwilioErrorCode.bindingInUse)) {
          return { kind: "bound-elsewhere", holderSid: conflictingConversationSid(error) };
        }
        if (hasTwilioCode(error, TwilioErrorCode.closedConversationImmutable))
          return { kind: "thread-closed" };
        throw error;
      }
    },

    async bindingsOf(address) {
      const held = await callTwilio("list participant conversations", async () =>
        (await conversations()).participantConversations.list({
          address,
          pageSize: 50,
          limit: BindingLookupLimit,
        }),
      );
      return held.map((entry) => ({
        conversationSid: entry.conversationSid,
        uniqueName: text(entry.conversationUniqueName),
        state: stateOf(entry.conversationState),
        proxyAddress: proxyOf(entry.participantMessagingBinding),
      }));
    },

    async postMessage(conversationSid, message) {
      try {
        const posted = await callTwilio("create message", async () =>
          (await conversations()).conversations(conversationSid).messages.create({
            author: message.author,
            attributes: message.attributes,
            ...(message.body === undefined ? {} : { body: message.body }),
            ...(message.contentSid === undefined ? {} : { contentSid: message.contentSid }),
            ...(message.contentVariables === undefined ? {} : { contentVariables: message.contentVariables }),
          }),
        );
        return { kind: "posted", messageSid: posted.sid };
      } catch (error) {
        if (hasTwilioCode(error, TwilioErrorCode.closedConversationImmutable))
          return { kind: "thread-closed" };
        if (isNotFound(error)) return { kind: "thread-gone" };
        throw error;
      }
    },

    async participantBinding(conversationSid, address) {
      const participants = await orUndefined(
        callTwilio("list participants", async () =>
          (await conversations()).conversations(conversationSid).participants.list({
            pageSize: 100,
            limit: ParticipantLookupLimit,
          }),
        ),
      );
      const customer = participants?.find(
        (participant) => addressOf(participant.messagingBinding) === address,
      );
      return customer === undefined ? undefined : { proxyAddress: proxyOf(customer.messagingBinding) };
    },

    async threadAttributes(conversationSid) {
      const found = await orUndefined(
        callTwilio("fetch conversation", async () =>
          (await conversations()).conversations(conversationSid).fetch(),
        ),
      );
      return found?.attributes;
    },

    updateThreadAttributes(conversationSid, attributes) {
      return updateOutcome(() =>
        callTwilio("update conversation", async () =>
          (await conversations()).conversations(conversationSid).update({ attributes }),
        ),
      );
    },

    async recentMessages(conversationSid, limit) {
      const messages = await orUndefined(
        callTwilio("list messages", async () =>
          (await conversations()).conversations(conversationSid).messages.list({
            order: "desc",
            pageSize: Math.min(limit, 100),
            limit,
          }),
        ),
      );
      return messages?.map(
        (message): ThreadMessage => ({
          messageSid: message.sid,
          index: message.index,
          author: text(message.author),
          body: message.body ?? undefined,
          mediaCount: Array.isArray(message.media) ? message.media.length : 0,
          attributes: parseAttributes(message.attributes),
          createdAt: message.dateCreated instanceof Date ? message.dateCreated.getTime() : 0,
        }),
      );
    },

    updateMessageAttributes(conversationSid, messageSid, attributes) {
      return updateOutcome(() =>
        callTwilio("update message", async () =>
          (await conversations()).conversations(conversationSid).messages(messageSid).update({ attributes }),
        ),
      );
    },

    async fetchSentMessage(messageSid) {
      const message = await orUndefined(
        callTwilio("fetch message", async () => (await client()).messages(messageSid).fetch()),
      );
      if (message === undefined) return undefined;
      return {
        sid: message.sid,
        from: text(message.from),
        to: message.to,
        body: message.body ?? undefined,
        direction: message.direction,
      };
    },

    async sendMessage(send: OutboundSend) {
      const sent = await callTwilio("send message", async () =>
        (await client()).messages.create({
          to: send.to,
          ...(send.from === undefined ? {} : { from: send.from }),
          ...(send.messagingServiceSid === undefined
            ? {}
            : { messagingServiceSid: send.messagingServiceSid }),
          ...(send.body === undefined ? {} : { body: send.body }),
          ...(send.contentSid === undefined ? {} : { contentSid: send.contentSid }),
          ...(send.contentVariables === undefined ? {} : { contentVariables: send.contentVariables }),
          ...(send.statusCallback === undefined ? {} : { statusCallback: send.statusCallback }),
        }),
      );
      return { sid: sent.sid, status: sent.status };
    },
  };
};
