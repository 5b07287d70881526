// Competitor (a): the webhook server Twilio's own Node guides lead to — Express with
// `express.urlencoded`, `twilio.validateRequest` over the configured public URL, a Redis
// `SET key 1 NX EX 604800` to drop duplicates (7 days, like our dedupe window), then SendMessage to the
// same FIFO queue as ours. A real HTTP server: the benchmark bundles it with the same `bundle()` as our
// functions, imports the bundle in a fresh process and drives it over loopback.
import type { Server } from "node:http";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import express from "express";
import { createClient } from "redis";
import twilio from "twilio";

const dedupeSeconds = 7 * 24 * 60 * 60;
const twiml = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

export type ExpressWebhookServer = { readonly url: string; close(): Promise<void> };

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

export const start = async (port = Number(process.env.PORT ?? 0)): Promise<ExpressWebhookServer> => {
  const authToken = required("TWILIO_AUTH_TOKEN");
  const publicBaseUrl = required("PUBLIC_WEBHOOK_BASE_URL");
  const queueUrl = required("CONSENT_QUEUE_URL");
  const redis = createClient({ url: required("REDIS_URL") });
  redis.on("error", (error: unknown) => console.error("redis:", error));
  await redis.connect();
  const sqs = new SQSClient({});

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post("/twilio/messaging/inbound", async (req, res) => {
    const params: Record<string, string> = req.body ?? {};
    const signature = req.header("x-twilio-signature") ?? "";
    if (!twilio.validateRequest(authToken, signature, `${publicBaseUrl}${req.originalUrl}`, params)) {
      res.status(403).end();
      return;
    }
    const eventId = `msg-in:${params.MessageSid}`;
    try {
      const claimed = await redis.set(`twilio:${eventId}`, "1", { NX: true, EX: dedupeSeconds });
      if (claimed === "OK") {
        try {
          await sqs.send(
            new SendMessageCommand({
              QueueUrl: queueUrl,
              MessageBody: JSON.stringify({
                v: 1,
                eventId,
                kind: "messaging.inbound",
                receivedAt: Date.now(),
                params,
              }),
              MessageGroupId: `addr:${params.From}`,
              MessageDeduplicationId: eventId,
            }),
          );
        } catch (error) {
          // Release the claim so Twilio's retry is processed.
          await redis.del(`twilio:${eventId}`);
          throw error;
        }
      }
      res.type("text/xml").send(twiml);
    } catch (error) {
      console.error("webhook failed:", error);
      res.status(500).end();
    }
  });

  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(port, "127.0.0.1", () => resolve(listening));
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  return {
    url: `http://127.0.0.1:${bound}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await redis.quit();
      sqs.destroy();
    },
  };
};

if (import.meta.main) await start();
