// In-memory fakes of the webhook's ports, recording what reached them.

import type { HttpRequest } from "../../lib/app/http.ts";
import type {
  AuthTokenSource,
  Claim,
  DedupeStore,
  EventQueue,
  OwnedClaim,
  PreEventPolicy,
  QueueMessage,
} from "../../lib/app/ports.ts";
import { allowAllPreEvents } from "../../lib/app/ports.ts";
import type { WebhookDeps } from "../../lib/app/webhook.ts";
import type { QueueName } from "../../lib/resources.ts";
import { encodeForm, type FormInput, sign, TestAuthToken, TestPublicBaseUrl } from "./twilio-webhooks.ts";

export const fakeDedupe = () => {
  const claims = new Map<string, { token: string; firstSeenAt: number }>();
  let next = 0;
  const store: DedupeStore & { claims: typeof claims; failClaim?: Error; released: string[] } = {
    claims,
    released: [],
    async claim(eventId, now): Promise<Claim> {
      if (store.failClaim) throw store.failClaim;
      const existing = claims.get(eventId);
      if (existing) return { kind: "duplicate", eventId, firstSeenAt: existing.firstSeenAt };
      next += 1;
      claims.set(eventId, { token: String(next), firstSeenAt: now });
      return { kind: "claimed", eventId, token: String(next) };
    },
    async release(claim: OwnedClaim) {
      if (claims.get(claim.eventId)?.token === claim.token) claims.delete(claim.eventId);
      store.released.push(claim.eventId);
    },
  };
  return store;
};

/** Delivers like SQS FIFO: a repeated deduplication id is accepted and dropped. */
export const fakeQueue = () => {
  const sent: { queue: QueueName; message: QueueMessage }[] = [];
  const seen = new Set<string>();
  const queue: EventQueue & { sent: typeof sent; attempts: number; fail?: Error } = {
    sent,
    attempts: 0,
    async send(name, message) {
      queue.attempts += 1;
      if (queue.fail) throw queue.fail;
      const key = `${name}|${message.deduplicationId}`;
      if (seen.has(key)) return;
      seen.add(key);
      sent.push({ queue: name, message });
    },
  };
  return queue;
};

export const staticTokens = (tokens: readonly string[]): AuthTokenSource => ({
  tokensFor: async () => tokens,
  refresh: async () => false,
});

export const fakeDeps = (overrides: Partial<WebhookDeps> = {}) => {
  const dedupe = fakeDedupe();
  const queue = fakeQueue();
  const deps: WebhookDeps = {
    publicBaseUrl: TestPublicBaseUrl,
    maxBodyBytes: 256 * 1024,
    tokens: staticTokens([TestAuthToken]),
    dedupe,
    queue,
    preEvents: allowAllPreEvents satisfies PreEventPolicy,
    resendWindowMs: 4 * 60_000,
    ...overrides,
  };
  return { deps, dedupe, queue };
};

export const signedRequest = (
  path: string,
  params: FormInput,
  options: { query?: string; token?: string; receivedAt?: number; headers?: Record<string, string> } = {},
): HttpRequest => {
  const query = options.query ?? "";
  const url = `${TestPublicBaseUrl}${path}${query ? `?${query}` : ""}`;
  return {
    method: "POST",
    rawPath: path,
    rawQueryString: query,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": sign(url, params, options.token),
      ...options.headers,
    },
    body: Buffer.from(encodeForm(params)),
    receivedAt: options.receivedAt ?? 1_800_000_000_000,
  };
};
