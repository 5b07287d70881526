// Pure mirroring rules: channel detection, thread unique names, status ranking, media, attributes and
// the matching of messages Twilio put into a thread itself.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  ConversationAttributesMaxBytes,
  channelOf,
  conversationSendAttributes,
  conversationSendOf,
  customerKey,
  InvalidMirrorInputError,
  inboundAttributes,
  inboundBody,
  isConversationSend,
  isOwnMessage,
  MessageAttributesMaxBytes,
  MirrorMarker,
  mediaOf,
  mergeOutboundSummary,
  mirroredCopyOf,
  nativeCandidates,
  type OutboundStatus,
  OutboundStatusRank,
  type OutboundSummaryEntry,
  OutboundSummaryLimit,
  outboundAttributes,
  outboundBody,
  parseAttributes,
  parseInboundMessage,
  parseThreadUniqueName,
  supersedes,
  type ThreadMessage,
  threadUniqueName,
} from "../../lib/domain/mirror.ts";

describe("channelOf", () => {
  test("bare E.164 is SMS, prefixed addresses name their channel", () => {
    assert.equal(channelOf("+14155550100"), "sms");
    assert.equal(channelOf("whatsapp:+447911123456"), "whatsapp");
    assert.equal(channelOf("messenger:1234567890"), "messenger");
    assert.equal(channelOf("rcs:+14155550100"), "rcs");
  });

  test("unknown prefixes, empty identifiers and free text are rejected", () => {
    for (const address of ["email:a@b.c", "whatsapp:", "hello", "", "+1"]) {
      assert.throws(() => channelOf(address), InvalidMirrorInputError, address);
    }
  });
});

describe("threadUniqueName", () => {
  test("known answers", () => {
    assert.equal(threadUniqueName(customerKey("acme", "+14155550100"), 1), "t_acme_sms_14155550100");
    assert.equal(
      threadUniqueName(customerKey("acme-eu", "whatsapp:+447911123456"), 3),
      "t_acme-eu_whatsapp_447911123456_g3",
    );
    assert.equal(threadUniqueName(customerKey("acme", "12345"), 1), "t_acme_sms_-12345");
    assert.equal(threadUniqueName(customerKey("acme", "messenger:a_b"), 1), "t_acme_messenger_-a.5fb");
  });

  test("generations start at 1", () => {
    assert.throws(() => threadUniqueName(customerKey("acme", "+14155550100"), 0), RangeError);
  });

  const addresses = fc.oneof(
    fc.stringMatching(/^\+[1-9][0-9]{6,14}$/),
    fc.stringMatching(/^[0-9]{3,15}$/),
    fc.stringMatching(/^\+[1-9][0-9]{6,14}$/).map((n) => `whatsapp:${n}`),
    fc.stringMatching(/^\+[1-9][0-9]{6,14}$/).map((n) => `rcs:${n}`),
    fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }).map((id) => `messenger:${id}`),
  );
  const tenants = fc.stringMatching(/^[A-Za-z0-9-]{1,32}$/);
  const generations = fc.integer({ min: 1, max: 10_000 });

  test("URL-safe, never SID-shaped, and parses back to the same customer and generation", () => {
    fc.assert(
      fc.property(tenants, addresses, generations, (tenant, address, generation) => {
        const key = customerKey(tenant, address);
        const name = threadUniqueName(key, generation);
        assert.match(name, /^[A-Za-z0-9._-]+$/);
        assert.doesNotMatch(name, /^CH[0-9a-fA-F]{32}$/);
        assert.deepEqual(parseThreadUniqueName(name), { key, generation });
      }),
    );
  });

  test("two different customers or generations never share a name", () => {
    fc.assert(
      fc.property(
        fc.tuple(tenants, addresses, generations),
        fc.tuple(tenants, addresses, generations),
        ([t1, a1, g1], [t2, a2, g2]) => {
          fc.pre(t1 !== t2 || a1 !== a2 || g1 !== g2);
          assert.notEqual(
            threadUniqueName(customerKey(t1, a1), g1),
            threadUniqueName(customerKey(t2, a2), g2),
          );
        },
      ),
    );
  });

  test("names we did not make are not parsed as ours", () => {
    for (const name of [
      "CHaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "support-123",
      "t_acme_fax_123",
      "t_acme_sms_1_g1",
    ]) {
      assert.equal(parseThreadUniqueName(name), undefined, name);
    }
  });
});

describe("status ranking", () => {
  const statuses = Object.keys(OutboundStatusRank) as OutboundStatus[];

  test("the forward path only moves forward", () => {
    const path: OutboundStatus[] = [
      "accepted",
      "scheduled",
      "queued",
      "sending",
      "sent",
      "delivered",
      "read",
    ];
    for (let i = 1; i < path.length; i += 1) {
      const [before, after] = [path[i - 1], path[i]] as [OutboundStatus, OutboundStatus];
      assert.ok(supersedes(after, before), `${after} beats ${before}`);
      assert.ok(!supersedes(before, after), `${before} never replaces ${after}`);
    }
  });

  test("delivered/read beat sent and failures; failures beat in-flight states; first failure stays", () => {
    assert.ok(supersedes("delivered", "sent"));
    assert.ok(supersedes("read", "undelivered"));
    assert.ok(supersedes("failed", "sent"));
    assert.ok(!supersedes("sent", "failed"));
    assert.ok(!supersedes("undelivered", "failed"));
    assert.ok(!supersedes("failed", "delivered"));
    assert.ok(supersedes("sent", undefined));
  });

  test("any arrival order of a status sequence ends in its highest-ranked status", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...statuses), { minLength: 1, maxLength: 12 }), (arrivals) => {
        let current: OutboundStatus | undefined;
        for (const status of arrivals) if (supersedes(status, current)) current = status;
        const best = Math.max(...arrivals.map((status) => OutboundStatusRank[status]));
        assert.equal(current === undefined ? -1 : OutboundStatusRank[current], best);
        // The first arrival of the best rank wins ties (two failures): order-dependent only among equals.
        assert.equal(
          current,
          arrivals.find((status) => OutboundStatusRank[status] === best),
        );
      }),
    );
  });
});

describe("inbound parsing and media", () => {
  const params = {
    MessageSid: "SM1",
    From: "whatsapp:+447911123456",
    To: "whatsapp:+14155550100",
    Body: "",
    NumMedia: "2",
    MediaUrl0: "https://api.twilio.com/media/ME1",
    MediaContentType0: "image/jpeg",
    MediaUrl1: "https://api.twilio.com/media/ME2",
    MediaContentType1: "application/pdf",
    MediaUrl2: "https://ignored.example/past-NumMedia",
  };

  test("media follow NumMedia, with content types", () => {
    assert.deepEqual(mediaOf(params), [
      { url: "https://api.twilio.com/media/ME1", contentType: "image/jpeg" },
      { url: "https://api.twilio.com/media/ME2", contentType: "application/pdf" },
    ]);
    assert.deepEqual(mediaOf({ NumMedia: "x" }), []);
  });

  test("a media-only message gets a body saying what it holds; media stay in attributes", () => {
    const message = parseInboundMessage(params);
    assert.equal(inboundBody(message), "[2 attachments]");
    const attributes = JSON.parse(inboundAttributes({ message, channel: "whatsapp", receivedAt: 0 }));
    assert.equal(attributes.mirroredBy, MirrorMarker);
    assert.equal(attributes.messagingMessageSid, "SM1");
    assert.equal(attributes.channel, "whatsapp");
    assert.deepEqual(attributes.media, [
      { url: "https://api.twilio.com/media/ME1", contentType: "image/jpeg" },
      { url: "https://api.twilio.com/media/ME2", contentType: "application/pdf" },
    ]);
  });

  test("attributes stay within Twilio's 4 KB by dropping the media that do not fit", () => {
    const many: Record<string, string> = { MessageSid: "SM2", From: "+14155550100", To: "+14155550199" };
    many.NumMedia = "10";
    for (let i = 0; i < 10; i += 1) many[`MediaUrl${i}`] = `https://media.example/${"x".repeat(600)}/${i}`;
    const message = parseInboundMessage(many);
    const json = inboundAttributes({ message, channel: "sms", receivedAt: 0 });
    assert.ok(Buffer.byteLength(json) <= MessageAttributesMaxBytes);
    const attributes = JSON.parse(json);
    assert.ok(attributes.media.length > 0 && attributes.media.length < 10);
    assert.equal(attributes.media.length + attributes.mediaOmitted, 10);
  });

  test("missing identity fields are rejected as invalid input", () => {
    assert.throws(() => parseInboundMessage({ From: "+14155550100", To: "+1" }), InvalidMirrorInputError);
  });
});

describe("attributes and loop guard", () => {
  test("outbound attributes carry sid, template, status and error code", () => {
    const attributes = JSON.parse(
      outboundAttributes({
        messagingMessageSid: "SM9",
        channel: "whatsapp",
        template: "HX1",
        status: "undelivered",
        errorCode: "63016",
      }),
    );
    assert.deepEqual(attributes, {
      mirroredBy: MirrorMarker,
      direction: "outbound",
      channel: "whatsapp",
      messagingMessageSid: "SM9",
      template: "HX1",
      status: "undelivered",
      errorCode: "63016",
    });
    assert.equal(outboundBody(undefined, "HX1"), "[template HX1]");
    assert.equal(outboundBody("Your code is 1", "HX1"), "Your code is 1");
  });

  test("own messages: system author or our marker; customers' are not", () => {
    assert.ok(isOwnMessage("system", {}));
    assert.ok(isOwnMessage("+14155550100", { mirroredBy: MirrorMarker }));
    assert.ok(!isOwnMessage("+14155550100", {}));
    assert.ok(!isOwnMessage("agent@example.com", { mirroredBy: "someone-else" }));
  });

  test("a message sendOutbound posts for Conversations to deliver names no Messaging SID", () => {
    const attributes = JSON.parse(
      conversationSendAttributes({ sendId: "s-1", template: "HX1", status: undefined, errorCode: undefined }),
    );
    assert.deepEqual(attributes, {
      mirroredBy: MirrorMarker,
      direction: "outbound",
      outbound: true,
      sendId: "s-1",
      template: "HX1",
      status: null,
      errorCode: null,
    });
    assert.ok(isConversationSend(attributes));
    assert.ok(isOwnMessage("acme-support", attributes), "the loop guard knows it whatever its author");
    assert.ok(
      !isConversationSend({ mirroredBy: MirrorMarker, direction: "outbound" }),
      "a mirrored copy is not",
    );
    assert.ok(!isConversationSend({ outbound: true }), "nor someone else's message");
  });

  test("parseAttributes tolerates junk", () => {
    assert.deepEqual(parseAttributes("not json"), {});
    assert.deepEqual(parseAttributes("[1]"), {});
    assert.deepEqual(parseAttributes(null), {});
    assert.deepEqual(parseAttributes('{"a":1}'), { a: 1 });
  });
});

describe("messages already in a thread", () => {
  const at = Date.UTC(2026, 0, 1);
  const message = (over: Partial<ThreadMessage>): ThreadMessage => ({
    messageSid: "IM0",
    index: 0,
    author: "+14155550100",
    body: "hi",
    mediaCount: 0,
    attributes: {},
    createdAt: at,
    ...over,
  });
  const probe = {
    author: (author: string | undefined) => author === "+14155550100",
    body: "hi",
    mediaCount: 0,
    around: at + 2_000,
    windowMs: 60_000,
  };

  test("our copy is found by messagingMessageSid and our marker only", () => {
    const ours = message({
      messageSid: "IM1",
      attributes: { mirroredBy: MirrorMarker, messagingMessageSid: "SM1" },
    });
    const lookalike = message({ messageSid: "IM2", attributes: { messagingMessageSid: "SM1" } });
    assert.equal(mirroredCopyOf([lookalike, ours], "SM1")?.messageSid, "IM1");
    assert.equal(mirroredCopyOf([lookalike], "SM1"), undefined);
  });

  test("captured candidates: same author, text and media count, not ours, inside the window, oldest first", () => {
    const messages = [
      message({ messageSid: "IM5", index: 5 }),
      message({ messageSid: "IM3", index: 3 }),
      message({ messageSid: "IM-ours", index: 4, attributes: { mirroredBy: MirrorMarker } }),
      message({ messageSid: "IM-other-author", index: 6, author: "+14155550199" }),
      message({ messageSid: "IM-other-text", index: 7, body: "hi!" }),
      message({ messageSid: "IM-media", index: 8, mediaCount: 1 }),
      message({ messageSid: "IM-old", index: 1, createdAt: at - 10 * 60_000 }),
    ];
    assert.deepEqual(
      nativeCandidates(messages, probe).map((m) => m.messageSid),
      ["IM3", "IM5"],
    );
  });

  test("sendOutbound's own posts are delivery candidates only when asked for, and found by sendId", () => {
    const send = message({
      messageSid: "IM-send",
      author: "acme-support",
      attributes: JSON.parse(
        conversationSendAttributes({
          sendId: "s-9",
          template: undefined,
          status: undefined,
          errorCode: undefined,
        }),
      ),
    });
    const copy = message({
      messageSid: "IM-copy",
      author: "system",
      attributes: { mirroredBy: MirrorMarker },
    });
    const anyone = { ...probe, author: (author: string | undefined) => author !== "+14155550100" };
    assert.deepEqual(nativeCandidates([send, copy], anyone), []);
    assert.deepEqual(
      nativeCandidates([send, copy], { ...anyone, conversationSends: true }).map((m) => m.messageSid),
      ["IM-send"],
    );
    assert.equal(conversationSendOf([copy, send], "s-9")?.messageSid, "IM-send");
    assert.equal(conversationSendOf([copy, send], "s-8"), undefined);
  });
});

describe("outbound summary on the conversation", () => {
  const at = Date.UTC(2026, 5, 1, 12);
  const entry = (over: Partial<OutboundSummaryEntry> = {}): OutboundSummaryEntry => ({
    messagingMessageSid: "SM1",
    status: "sent",
    errorCode: undefined,
    template: undefined,
    at,
    ...over,
  });
  const listOf = (merge: ReturnType<typeof mergeOutboundSummary>) => {
    assert.equal(merge.kind, "merged");
    return merge.kind === "merged" ? JSON.parse(merge.attributes) : {};
  };

  test("adds the entry and keeps every other attribute", () => {
    const attributes = listOf(
      mergeOutboundSummary('{"tenantId":"acme","flex":{"queue":"support"}}', entry({ template: "HX1" })),
    );
    assert.deepEqual(attributes, {
      tenantId: "acme",
      flex: { queue: "support" },
      outboundNotMirrored: [
        {
          messagingMessageSid: "SM1",
          status: "sent",
          errorCode: null,
          template: "HX1",
          at: new Date(at).toISOString(),
        },
      ],
    });
    assert.equal(listOf(mergeOutboundSummary("", entry())).outboundNotMirrored.length, 1, "empty attributes");
  });

  test("moves forward only: any arrival order ends in the highest-ranked status", () => {
    const statuses = Object.keys(OutboundStatusRank) as OutboundStatus[];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...statuses), { minLength: 1, maxLength: 10 }), (arrivals) => {
        let attributes = "{}";
        for (const status of arrivals) {
          const merge = mergeOutboundSummary(attributes, entry({ status }));
          if (merge.kind === "merged") attributes = merge.attributes;
          else assert.equal(merge.kind, "unchanged");
        }
        const best = Math.max(...arrivals.map((status) => OutboundStatusRank[status]));
        const [shown] = JSON.parse(attributes).outboundNotMirrored;
        assert.equal(OutboundStatusRank[shown.status as OutboundStatus], best);
      }),
    );
  });

  test("a lower or equal status is unchanged, whatever the error code", () => {
    const delivered = listOf(mergeOutboundSummary("{}", entry({ status: "delivered" })));
    const current = JSON.stringify(delivered);
    assert.deepEqual(mergeOutboundSummary(current, entry({ status: "sent" })), { kind: "unchanged" });
    assert.deepEqual(mergeOutboundSummary(current, entry({ status: "delivered" })), { kind: "unchanged" });
    assert.deepEqual(mergeOutboundSummary(current, entry({ status: "failed", errorCode: "30003" })), {
      kind: "unchanged",
    });
  });

  test(`keeps the newest ${OutboundSummaryLimit}; the entry updated last moves to the end`, () => {
    let attributes = "{}";
    for (let i = 0; i < OutboundSummaryLimit + 3; i += 1) {
      attributes = JSON.stringify(
        listOf(mergeOutboundSummary(attributes, entry({ messagingMessageSid: `SM${i}` }))),
      );
    }
    const updated = listOf(
      mergeOutboundSummary(attributes, entry({ messagingMessageSid: "SM5", status: "read" })),
    );
    const sids = updated.outboundNotMirrored.map(
      (item: { messagingMessageSid: string }) => item.messagingMessageSid,
    );
    assert.equal(sids.length, OutboundSummaryLimit);
    assert.deepEqual(sids.slice(0, 3), ["SM3", "SM4", "SM6"]);
    assert.equal(sids.at(-1), "SM5");
  });

  test("stays within Twilio's 16 KB by dropping the oldest entries; never overwrites what it cannot read", () => {
    const big = JSON.stringify({ notes: "x".repeat(ConversationAttributesMaxBytes - 400) });
    let attributes = big;
    for (let i = 0; i < 5; i += 1) {
      attributes = JSON.stringify(
        listOf(mergeOutboundSummary(attributes, entry({ messagingMessageSid: `SM${i}` }))),
      );
      assert.ok(Buffer.byteLength(attributes) <= ConversationAttributesMaxBytes);
    }
    const kept = JSON.parse(attributes).outboundNotMirrored;
    assert.ok(kept.length < 5 && kept.length >= 1);
    assert.equal(kept.at(-1).messagingMessageSid, "SM4");

    const full = JSON.stringify({ notes: "x".repeat(ConversationAttributesMaxBytes) });
    for (const current of [full, "not json", '"a string"', "[1,2]", '{"outboundNotMirrored":"theirs"}']) {
      assert.deepEqual(mergeOutboundSummary(current, entry()), { kind: "unmergeable" }, current.slice(0, 30));
    }
  });
});
