// Read-only views of the emulator's state for tests: copies, so a test cannot change the account behind
// the API's back, and camelCase with ISO timestamps, so assertions read naturally.
import { isoDate } from "./render.ts";
import type {
  ConversationRecord,
  ConversationState,
  MessageRecord,
  MessagingChannel,
  OutboundMessageRecord,
  ParticipantRecord,
  PhoneNumberRecord,
  TwilioAccountState,
} from "./state.ts";

export interface ConversationView {
  readonly sid: string;
  readonly uniqueName: string | null;
  readonly friendlyName: string | null;
  readonly state: ConversationState;
  readonly attributes: string;
  readonly messagingServiceSid: string;
  readonly timers: { readonly inactiveAfterMs: number | null; readonly closedAfterMs: number | null };
  readonly dateCreated: string;
  readonly dateUpdated: string;
}

export interface ParticipantView {
  readonly sid: string;
  readonly conversationSid: string;
  readonly identity: string | null;
  readonly channel: MessagingChannel | null;
  readonly address: string | null;
  readonly proxyAddress: string | null;
  readonly projectedAddress: string | null;
  readonly attributes: string;
  readonly dateCreated: string;
  readonly dateUpdated: string;
}

export interface MessageView {
  readonly sid: string;
  readonly conversationSid: string;
  readonly index: number;
  readonly author: string;
  readonly body: string | null;
  readonly attributes: string;
  readonly mediaSids: readonly string[];
  readonly contentSid: string | null;
  readonly contentVariables: string | null;
  readonly participantSid: string | null;
  readonly dateCreated: string;
  readonly dateUpdated: string;
}

export interface OutboundMessageView {
  readonly sid: string;
  readonly to: string;
  readonly from: string | null;
  readonly messagingServiceSid: string | null;
  readonly body: string | null;
  readonly contentSid: string | null;
  readonly contentVariables: string | null;
  readonly statusCallback: string | null;
  readonly mediaUrls: readonly string[];
  readonly status: string;
  readonly dateCreated: string;
}

export interface PhoneNumberView {
  readonly sid: string;
  readonly phoneNumber: string;
  readonly friendlyName: string;
  readonly smsUrl: string | null;
  readonly smsMethod: string;
  readonly smsFallbackUrl: string | null;
  readonly statusCallback: string | null;
  readonly voiceUrl: string | null;
}

export interface WebhookConfigurationView {
  readonly method: string;
  readonly filters: readonly string[];
  readonly preWebhookUrl: string | null;
  readonly postWebhookUrl: string | null;
}

export interface TwilioEmulatorInspector {
  /** The default Conversation Service (`IS…`) every conversation belongs to. */
  chatServiceSid(): string;
  /** The account's default Messaging Service (`MG…`). */
  messagingServiceSid(): string;
  conversations(): ConversationView[];
  /** By SID or unique name. */
  conversation(sidOrUniqueName: string): ConversationView | undefined;
  participants(conversationSid: string): ParticipantView[];
  /** Messages of a conversation, by index. */
  messages(conversationSid: string): MessageView[];
  /** Everything sent through `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, oldest first. */
  outboundMessages(): OutboundMessageView[];
  phoneNumbers(): PhoneNumberView[];
  webhookConfiguration(): WebhookConfigurationView & { readonly target: string };
  serviceWebhookConfiguration(): WebhookConfigurationView;
}

export function inspectorFor(state: TwilioAccountState): TwilioEmulatorInspector {
  const withTimers = () => {
    state.applyTimers();
    return state;
  };
  return {
    chatServiceSid: () => state.chatServiceSid,
    messagingServiceSid: () => state.messagingServiceSid,
    conversations: () => [...withTimers().conversations.values()].map(conversationView),
    conversation: (sidOrUniqueName) => {
      const found = withTimers().findConversation(sidOrUniqueName);
      return found === undefined ? undefined : conversationView(found);
    },
    participants: (conversationSid) => state.participantsOf(conversationSid).map(participantView),
    messages: (conversationSid) => state.messagesOf(conversationSid).map(messageView),
    outboundMessages: () => [...state.outboundMessages.values()].map(outboundMessageView),
    phoneNumbers: () => [...state.phoneNumbers.values()].map(phoneNumberView),
    webhookConfiguration: () => {
      const { method, filters, preWebhookUrl, postWebhookUrl, target } = state.webhookConfiguration;
      return { method, filters: [...filters], preWebhookUrl, postWebhookUrl, target };
    },
    serviceWebhookConfiguration: () => {
      const { method, filters, preWebhookUrl, postWebhookUrl } = state.serviceWebhookConfiguration;
      return { method, filters: [...filters], preWebhookUrl, postWebhookUrl };
    },
  };
}

function conversationView(c: ConversationRecord): ConversationView {
  return {
    sid: c.sid,
    uniqueName: c.uniqueName,
    friendlyName: c.friendlyName,
    state: c.state,
    attributes: c.attributes,
    messagingServiceSid: c.messagingServiceSid,
    timers: { ...c.timers },
    dateCreated: isoDate(c.dateCreated),
    dateUpdated: isoDate(c.dateUpdated),
  };
}

function participantView(p: ParticipantRecord): ParticipantView {
  return {
    sid: p.sid,
    conversationSid: p.conversationSid,
    identity: p.identity,
    channel: p.binding?.type ?? null,
    address: p.binding?.address ?? null,
    proxyAddress: p.binding?.proxyAddress ?? null,
    projectedAddress: p.binding?.projectedAddress ?? null,
    attributes: p.attributes,
    dateCreated: isoDate(p.dateCreated),
    dateUpdated: isoDate(p.dateUpdated),
  };
}

function messageView(m: MessageRecord): MessageView {
  return {
    sid: m.sid,
    conversationSid: m.conversationSid,
    index: m.index,
    author: m.author,
    body: m.body,
    attributes: m.attributes,
    mediaSids: [...m.mediaSids],
    contentSid: m.contentSid,
    contentVariables: m.contentVariables,
    participantSid: m.participantSid,
    dateCreated: isoDate(m.dateCreated),
    dateUpdated: isoDate(m.dateUpdated),
  };
}

function outboundMessageView(m: OutboundMessageRecord): OutboundMessageView {
  return {
    sid: m.sid,
    to: m.to,
    from: m.from,
    messagingServiceSid: m.messagingServiceSid,
    body: m.body,
    contentSid: m.contentSid,
    contentVariables: m.contentVariables,
    statusCallback: m.statusCallback,
    mediaUrls: [...m.mediaUrls],
    status: m.status,
    dateCreated: isoDate(m.dateCreated),
  };
}

function phoneNumberView(p: PhoneNumberRecord): PhoneNumberView {
  return {
    sid: p.sid,
    phoneNumber: p.phoneNumber,
    friendlyName: p.friendlyName,
    smsUrl: p.smsUrl,
    smsMethod: p.smsMethod,
    smsFallbackUrl: p.smsFallbackUrl,
    statusCallback: p.statusCallback,
    voiceUrl: p.voiceUrl,
  };
}
