// Builds webhook requests exactly as Twilio sends them through API Gateway HTTP API (payload 2.0):
// form-encoded, base64 body, lower-cased headers, signed with the twilio SDK (the oracle) over the
// public URL.
import { randomUUID } from "node:crypto";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import twilio from "twilio";

export const TestAccountSid = `AC${"a".repeat(32)}`;
export const TestAuthToken = "test-auth-token-0123456789abcdef";
export const TestPublicBaseUrl = "https://hooks.example.test";

export type FormInput = Record<string, string | string[]>;

export const encodeForm = (params: FormInput): string => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, item);
  }
  return search.toString();
};

export const sign = (url: string, params: FormInput, token = TestAuthToken): string =>
  twilio.getExpectedTwilioSignature(token, url, params);

export type EventOptions = {
  readonly path: string;
  readonly params?: FormInput;
  readonly rawQueryString?: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly token?: string;
  readonly signature?: string | null;
  readonly base64?: boolean;
  readonly timeEpoch?: number;
};

export const apiGatewayEvent = (options: EventOptions): APIGatewayProxyEventV2 => {
  const params = options.params ?? {};
  const body = options.body ?? encodeForm(params);
  const query = options.rawQueryString ?? "";
  const url = `${TestPublicBaseUrl}${options.path}${query ? `?${query}` : ""}`;
  const signature =
    options.signature === undefined ? sign(url, params, options.token) : (options.signature ?? undefined);
  const base64 = options.base64 ?? true;
  const method = options.method ?? "POST";
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: options.path,
    rawQueryString: query,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      host: "hooks.example.test",
      ...(signature === undefined ? {} : { "x-twilio-signature": signature }),
      ...options.headers,
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "hooks.example.test",
      domainPrefix: "hooks",
      http: {
        method,
        path: options.path,
        protocol: "HTTP/1.1",
        sourceIp: "127.0.0.1",
        userAgent: "TwilioProxy/1.1",
      },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: new Date().toISOString(),
      timeEpoch: options.timeEpoch ?? Date.now(),
    },
    body: base64 ? Buffer.from(body, "utf8").toString("base64") : body,
    isBase64Encoded: base64,
  };
};

let counter = 0;
const sid = (prefix: string): string => {
  counter += 1;
  return `${prefix}${randomUUID().replaceAll("-", "").slice(0, 24)}${counter.toString(16).padStart(8, "0")}`;
};
export const newSid = sid;

export const inboundSms = (overrides: FormInput = {}): FormInput => {
  const messageSid = sid("SM");
  return {
    ToCountry: "US",
    SmsMessageSid: messageSid,
    NumMedia: "0",
    SmsSid: messageSid,
    SmsStatus: "received",
    Body: "Hello there",
    To: "+15005550006",
    NumSegments: "1",
    MessageSid: messageSid,
    AccountSid: TestAccountSid,
    From: "+14155550100",
    ApiVersion: "2010-04-01",
    ...overrides,
  };
};

export const statusCallback = (overrides: FormInput = {}): FormInput => {
  const messageSid = sid("SM");
  return {
    MessageSid: messageSid,
    SmsSid: messageSid,
    MessageStatus: "delivered",
    SmsStatus: "delivered",
    AccountSid: TestAccountSid,
    From: "+15005550006",
    To: "+14155550100",
    ApiVersion: "2010-04-01",
    ...overrides,
  };
};

export const conversationsEvent = (eventType: string, overrides: FormInput = {}): FormInput => ({
  AccountSid: TestAccountSid,
  EventType: eventType,
  Source: "SDK",
  ChatServiceSid: `IS${"b".repeat(32)}`,
  ConversationSid: sid("CH"),
  ...overrides,
});
