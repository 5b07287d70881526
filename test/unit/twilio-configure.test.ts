// The Messaging-Service path of `npm run twilio:configure` against an in-memory fake of its port: the
// local Twilio emulator has no Messaging v1 (no spec is vendored), so this is the only check of that call.
// Idempotent, dry run writes nothing, only drifted fields are sent, bad SIDs and API failures are reported.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ConfigurePlan,
  configureMessagingServices,
  describeResults,
  type MessagingServicePort,
  type MessagingServiceSettings,
  parseCommandLine,
  statusUrlAdvice,
  TwilioCallError,
  TwilioConfigureError,
} from "../../lib/tools/twilio-configure.ts";

const BASE = "https://abc123.execute-api.eu-west-1.amazonaws.com";
const CONVERSATIONS_URL = `${BASE}/twilio/conversations`;
const INBOUND_URL = `${BASE}/twilio/messaging/inbound`;
const STATUS_URL = `${BASE}/twilio/messaging/status`;
const SERVICE = `MG${"a".repeat(32)}`;
const OTHER_SERVICE = `MG${"b".repeat(32)}`;

type Call = { readonly op: "fetch" | "update"; readonly sid: string; readonly changes?: object };

const fakeMessagingServices = (
  initial: Record<string, MessagingServiceSettings>,
  failures: { fetch?: string; update?: string } = {},
) => {
  const services = new Map(Object.entries(initial));
  const calls: Call[] = [];
  const notFound = () =>
    Object.assign(new Error("The requested resource was not found"), { status: 404, code: 20404 });
  const port: MessagingServicePort = {
    fetch: async (sid) => {
      calls.push({ op: "fetch", sid });
      const service = services.get(sid);
      if (service === undefined || failures.fetch === sid) throw notFound();
      return service;
    },
    update: async (sid, changes) => {
      calls.push({ op: "update", sid, changes });
      const service = services.get(sid);
      if (service === undefined || failures.update === sid) throw notFound();
      services.set(sid, { ...service, ...changes });
      return services.get(sid);
    },
  };
  return { port, calls, service: (sid: string) => services.get(sid) };
};

const unset: MessagingServiceSettings = {
  inboundRequestUrl: null,
  inboundMethod: "POST",
  statusCallback: null,
};

const plan = (overrides: Partial<ConfigurePlan> = {}): ConfigurePlan => ({
  conversationsUrl: CONVERSATIONS_URL,
  messagingInboundUrl: INBOUND_URL,
  messagingStatusUrl: STATUS_URL,
  phoneNumbers: [],
  messagingServiceSids: [SERVICE],
  dryRun: false,
  ...overrides,
});

describe("configureMessagingServices", () => {
  test("sets InboundRequestUrl, InboundMethod=POST and StatusCallback and reports each change", async () => {
    const fake = fakeMessagingServices({ [SERVICE]: { ...unset, inboundMethod: "GET" } });
    const [result] = await configureMessagingServices(fake.port, plan());
    assert.deepEqual(fake.service(SERVICE), {
      inboundRequestUrl: INBOUND_URL,
      inboundMethod: "POST",
      statusCallback: STATUS_URL,
    });
    assert.deepEqual(result, {
      target: `messaging service ${SERVICE}`,
      changes: [
        { field: "InboundRequestUrl", from: "(unset)", to: `"${INBOUND_URL}"` },
        { field: "InboundMethod", from: '"GET"', to: '"POST"' },
        { field: "StatusCallback", from: "(unset)", to: `"${STATUS_URL}"` },
      ],
    });
  });

  test("a second run reports unchanged and sends no update", async () => {
    const fake = fakeMessagingServices({ [SERVICE]: unset });
    await configureMessagingServices(fake.port, plan());
    fake.calls.length = 0;
    const results = await configureMessagingServices(fake.port, plan());
    assert.deepEqual(describeResults(results, false), [`messaging service ${SERVICE}: unchanged`]);
    assert.deepEqual(fake.calls, [{ op: "fetch", sid: SERVICE }]);
  });

  test("--dry-run reports what would change and writes nothing", async () => {
    const fake = fakeMessagingServices({ [SERVICE]: unset });
    const results = await configureMessagingServices(fake.port, plan({ dryRun: true }));
    assert.deepEqual(fake.service(SERVICE), unset);
    assert.ok(!fake.calls.some((call) => call.op === "update"));
    const lines = describeResults(results, true);
    assert.equal(lines[0], `messaging service ${SERVICE}: would change`);
    assert.ok(lines.includes(`  StatusCallback: (unset) → "${STATUS_URL}"`), lines.join("\n"));
  });

  test("sends only the fields that drifted; a lower-case method counts as POST", async () => {
    const fake = fakeMessagingServices({
      [SERVICE]: { inboundRequestUrl: INBOUND_URL, inboundMethod: "post", statusCallback: `${BASE}/old` },
    });
    const [result] = await configureMessagingServices(fake.port, plan());
    assert.deepEqual(fake.calls.at(-1), {
      op: "update",
      sid: SERVICE,
      changes: { statusCallback: STATUS_URL },
    });
    assert.deepEqual(
      result?.changes.map((change) => change.field),
      ["StatusCallback"],
    );
  });

  test("fetches every service before writing, so one unknown SID leaves all of them untouched", async () => {
    const fake = fakeMessagingServices({ [SERVICE]: unset });
    await assert.rejects(
      configureMessagingServices(fake.port, plan({ messagingServiceSids: [SERVICE, OTHER_SERVICE] })),
      (error: unknown) =>
        error instanceof TwilioCallError &&
        error.message ===
          `fetching messaging service ${OTHER_SERVICE} failed (HTTP 404, Twilio error 20404: The requested resource was not found)`,
    );
    assert.deepEqual(fake.service(SERVICE), unset);
    assert.ok(!fake.calls.some((call) => call.op === "update"));
  });

  test("a failed update names the service and Twilio's answer, keeping the cause", async () => {
    const fake = fakeMessagingServices({ [SERVICE]: unset }, { update: SERVICE });
    await assert.rejects(
      configureMessagingServices(fake.port, plan()),
      (error: unknown) =>
        error instanceof TwilioCallError &&
        /^updating messaging service MGa{32} failed \(HTTP 404, Twilio error 20404: /.test(error.message) &&
        error.cause instanceof Error,
    );
  });

  test("rejects a malformed SID before any call", async () => {
    for (const sid of ["MG123", `IS${"a".repeat(32)}`, `MG${"g".repeat(32)}`, ` ${SERVICE}`]) {
      const fake = fakeMessagingServices({ [SERVICE]: unset });
      await assert.rejects(
        configureMessagingServices(fake.port, plan({ messagingServiceSids: [SERVICE, sid] })),
        TwilioConfigureError,
        sid,
      );
      assert.deepEqual(fake.calls, [], sid);
    }
  });

  test("refuses to run without the status URL rather than clearing the service's StatusCallback", async () => {
    const fake = fakeMessagingServices({ [SERVICE]: unset });
    await assert.rejects(
      configureMessagingServices(fake.port, plan({ messagingStatusUrl: undefined })),
      /messaging inbound and status URLs/,
    );
    assert.deepEqual(fake.calls, []);
  });
});

describe("command line: --messaging-service", () => {
  test("takes repeated services and the status URL flag", async () => {
    const { plan: parsed } = await parseCommandLine([
      ...["--conversations-url", CONVERSATIONS_URL, "--messaging-inbound-url", INBOUND_URL],
      ...["--messaging-status-url", STATUS_URL],
      ...["--messaging-service", SERVICE, "--messaging-service", OTHER_SERVICE],
    ]);
    assert.deepEqual(parsed?.messagingServiceSids, [SERVICE, OTHER_SERVICE]);
    assert.equal(parsed?.messagingStatusUrl, STATUS_URL);
  });

  test("rejects a malformed SID and a relative status URL while parsing", async () => {
    const base = ["--conversations-url", CONVERSATIONS_URL];
    await assert.rejects(parseCommandLine([...base, "--messaging-service", "MG42"]), /Messaging Service SID/);
    await assert.rejects(parseCommandLine([...base, "--messaging-status-url", "/status"]), /absolute URL/);
  });
});

describe("statusUrlAdvice", () => {
  test("tells the operator where the status URL goes when only numbers are configured", () => {
    const lines = statusUrlAdvice(plan({ phoneNumbers: ["+15551234567"], messagingServiceSids: [] }));
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? "", /StatusCallback of each send \(sendOutbound\(\{ statusCallback \}\)\)/);
    assert.match(lines[0] ?? "", /--messaging-service/);
    assert.ok(lines[0]?.includes(STATUS_URL));
  });

  test("stays silent when a Messaging Service carries the status URL, or no number is configured", () => {
    assert.deepEqual(statusUrlAdvice(plan({ phoneNumbers: ["+15551234567"] })), []);
    assert.deepEqual(statusUrlAdvice(plan({ messagingServiceSids: [] })), []);
  });
});
