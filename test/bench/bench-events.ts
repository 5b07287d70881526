// The benchmark's one event source: every target gets an inbound SMS webhook with a fresh MessageSid,
// signed with the same token over the same public URL, so all builds do the same work per request
// (verify, claim the id once, hand off to the same FIFO queue). Lambda targets get it as the HTTP API
// 2.0 event API Gateway would build; HTTP targets get the bytes Twilio would POST.
import { randomUUID } from "node:crypto";
import { expectedSignature } from "../../lib/domain/signature.ts";

export const InboundPath = "/twilio/messaging/inbound";

export type InboundParams = Record<string, string>;

export const inboundParams = (): InboundParams => {
  const sid = `SM${randomUUID().replaceAll("-", "")}`;
  return {
    ToCountry: "US",
    SmsMessageSid: sid,
    NumMedia: "0",
    SmsSid: sid,
    SmsStatus: "received",
    Body: "Hello, I would like to change my delivery address please",
    To: "+15005550006",
    NumSegments: "1",
    MessageSid: sid,
    AccountSid: `AC${"a".repeat(32)}`,
    From: `+1415555${String(Math.floor(Math.random() * 10000)).padStart(4, "0")}`,
    ApiVersion: "2010-04-01",
  };
};

/** What Twilio POSTs: the form body and its signature over `publicBase + path`. */
export type SignedPost = { readonly path: string; readonly body: string; readonly signature: string };

export const signedInboundPost = (token: string, publicBase: string): SignedPost => {
  const params = inboundParams();
  return {
    path: InboundPath,
    body: new URLSearchParams(params).toString(),
    signature: expectedSignature(token, `${publicBase}${InboundPath}`, params),
  };
};

/** The HTTP API (payload 2.0) event for a signed POST: lower-cased headers, base64 form body. */
export const apiGatewayEventFor = (post: SignedPost, host = "bench.local") => ({
  version: "2.0",
  routeKey: "$default",
  rawPath: post.path,
  rawQueryString: "",
  headers: {
    "content-type": "application/x-www-form-urlencoded",
    "x-twilio-signature": post.signature,
    host,
  },
  requestContext: {
    http: { method: "POST", path: post.path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1" },
    requestId: randomUUID(),
    stage: "$default",
    timeEpoch: Date.now(),
  },
  body: Buffer.from(post.body).toString("base64"),
  isBase64Encoded: true,
});

/** The floor gets the envelope the webhook would build, so both send the same bytes. */
export type FloorEvent = { readonly eventId: string; readonly groupId: string; readonly body: string };

export const floorEvent = (): FloorEvent => {
  const params = inboundParams();
  const eventId = `msg-in:${params.MessageSid}`;
  const body = JSON.stringify({ v: 1, eventId, kind: "messaging.inbound", receivedAt: Date.now(), params });
  return { eventId, groupId: `addr:${params.From}`, body };
};
