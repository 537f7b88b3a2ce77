// The client against a real `onceflow dev` (started by client_test.go,
// which sets the variables below). Each test uses keys of its own, so the
// tests can run in any order against one stack.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import {
  Onceflow,
  OnceflowError,
  quoteIdempotencyKey,
  verifyWebhook,
  type FeedItem,
  type NotificationStatus,
} from "../src/index.js";

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through client_test.go (go test ./clients/typescript)`);
  return v;
}

const baseUrl = env("ONCEFLOW_URL");
const token = env("ONCEFLOW_TEST_TOKEN");
const webhookSecret = env("ONCEFLOW_WEBHOOK_SECRET");
const onceflow = new Onceflow({ baseUrl, token });
const run = randomUUID().slice(0, 8);

async function until<T>(what: string, get: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const finished = (s: NotificationStatus) => s.execution !== "running";

describe("Idempotency-Key", () => {
  it("quotes as an RFC 8941 sf-string", () => {
    assert.equal(quoteIdempotencyKey("order-1"), '"order-1"');
    assert.equal(quoteIdempotencyKey('a"b\\c'), '"a\\"b\\\\c"');
    assert.throws(() => quoteIdempotencyKey("caf\u00e9"), RangeError);
  });

  it("carries a key with quotes and backslashes to the server and back", async () => {
    const key = `ts-${run}-"quoted"\\key`;
    const accepted = await onceflow.send({ key, deliveries: [{ channel: "inapp", to: `q-${run}` }], body: "hello" });
    assert.equal(accepted.key, key);
    const status = await until("the notification", () => onceflow.status(key), finished);
    assert.equal(status.result.key, key);
    assert.equal(status.result.deliveries?.[0]?.status, "delivered");
  });

  it("answers a repeat as the first time, and refuses the key with another payload", async () => {
    const key = `ts-${run}-repeat`;
    const n = { key, deliveries: [{ channel: "inapp" as const, to: `r-${run}` }], body: "once" };
    const first = await onceflow.send(n);
    const again = await onceflow.send(n);
    assert.equal(again.workflow_id, first.workflow_id);
    assert.equal(again.run_id, first.run_id);
    await assert.rejects(onceflow.send({ ...n, body: "twice?" }), (err: unknown) => {
      assert.ok(err instanceof OnceflowError);
      assert.equal(err.status, 422);
      assert.equal(err.problem?.status, 422);
      return true;
    });
  });
});

describe("errors", () => {
  it("are problem details naming the field", async () => {
    await assert.rejects(onceflow.send({ key: `ts-${run}-bad`, deliveries: [{ channel: "sms", to: "not a number" }], body: "x" }), (err: unknown) => {
      assert.ok(err instanceof OnceflowError);
      assert.equal(err.status, 400);
      assert.match(err.field ?? "", /^deliveries/);
      assert.equal(err.problem?.title, "Bad Request");
      return true;
    });
  });

  it("refuse a caller without a token", async () => {
    const anonymous = new Onceflow({ baseUrl });
    await assert.rejects(anonymous.status(`ts-${run}-x`), (err: unknown) => {
      assert.ok(err instanceof OnceflowError);
      assert.equal(err.status, 401);
      return true;
    });
  });
});

describe("webhooks", () => {
  const received: { body: string; headers: IncomingMessage["headers"] }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ body: Buffer.concat(chunks).toString("utf8"), headers: req.headers });
      res.writeHead(204).end();
    });
  });
  let url = "";
  before(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  after(() => server.close());

  it("verify with the official library, and a tampered one does not", async () => {
    const key = `ts-${run}-webhook`;
    await onceflow.send({ key, deliveries: [{ channel: "webhook", to: url }], subject: "Shipped", body: "On its way." });
    const status = await until("the webhook delivery", () => onceflow.status(key), finished);
    assert.equal(status.result.deliveries?.[0]?.status, "delivered");
    assert.equal(received.length, 1);
    const got = received[0]!;
    const headers = got.headers as Record<string, string>;

    const { id, payload } = verifyWebhook(webhookSecret, got.body, headers);
    assert.equal(id, status.result.deliveries?.[0]?.delivery_id);
    assert.equal(payload.type, "notification");
    assert.equal(payload.data.key, key);
    assert.equal(payload.data.body, "On its way.");
    assert.equal(headers["idempotency-key"], id);
    // The library itself agrees, with no help from this client.
    assert.doesNotThrow(() => new Webhook(webhookSecret).verify(got.body, headers));

    assert.throws(() => verifyWebhook(webhookSecret, got.body.replace("On its way.", "On its way!"), headers));
    const other = `whsec_${Buffer.from(randomUUID()).toString("base64")}`;
    assert.throws(() => verifyWebhook(other, got.body, headers));
    // While a secret is rotated, either of the two verifies.
    assert.equal(verifyWebhook([other, webhookSecret], got.body, headers).id, id);
  });
});

describe("the in-app feed", () => {
  it("streams new items to a browser holding a subscriber token, and pages through them", async () => {
    const subscriber = `ts-${run}-reader`;
    const minted = await onceflow.subscriberToken(subscriber, "5m");
    assert.equal(minted.subscriber, subscriber);
    const browser = new Onceflow({ baseUrl, token: minted.token });

    const streamed: FeedItem[] = [];
    let opened!: () => void;
    const connected = new Promise<void>((r) => (opened = r));
    const stream = browser.streamFeed(subscriber, { onItem: (item) => streamed.push(item), onOpen: () => opened() });
    await connected;
    try {
      const keys = [1, 2, 3, 4, 5].map((i) => `ts-${run}-feed-${i}`);
      for (const key of keys) {
        await onceflow.send({ key, deliveries: [{ channel: "inapp", to: subscriber }], subject: key, body: `item ${key}` });
        await until(key, () => onceflow.status(key), finished);
      }
      await until("five streamed items", async () => streamed.length, (n) => n >= 5);
      assert.deepEqual(streamed.map((i) => i.key), keys);

      const paged: FeedItem[] = [];
      let pagesSeen = 0;
      for await (const page of pagesOf(browser, subscriber)) {
        pagesSeen++;
        paged.push(...page);
      }
      assert.equal(pagesSeen, 3, "limit 2 over five items is three pages");
      assert.deepEqual(paged.map((i) => i.key), [...keys].reverse(), "newest first, each once");

      const all: FeedItem[] = [];
      for await (const item of browser.feed(subscriber, { limit: 2 })) all.push(item);
      assert.deepEqual(all.map((i) => i.id), paged.map((i) => i.id));
    } finally {
      stream.close();
    }

    // A subscriber token reads its own subscriber's feed and nothing else.
    await assert.rejects(browser.feedPage(`${subscriber}-other`), (err: unknown) => {
      assert.ok(err instanceof OnceflowError);
      assert.equal(err.status, 403);
      return true;
    });
  });
});

describe("revocation", () => {
  it("refuses a subscriber token issued before it, and accepts one issued after", async () => {
    const subscriber = `ts-${run}-revoked`;
    const before = new Onceflow({ baseUrl, token: (await onceflow.subscriberToken(subscriber)).token });
    await before.feedPage(subscriber);
    const revoked = await onceflow.revokeSubscriber(subscriber);
    assert.equal(revoked.subscriber, subscriber);
    await assert.rejects(before.feedPage(subscriber), (err: unknown) => {
      assert.ok(err instanceof OnceflowError);
      assert.equal(err.status, 401);
      return true;
    });
    const after = new Onceflow({ baseUrl, token: (await onceflow.subscriberToken(subscriber)).token });
    assert.equal((await after.feedPage(subscriber)).items.length, 0);
  });
});

describe("limits", () => {
  it("tell a browser flooding one subscriber's feed when to come back", async () => {
    // onceflow dev runs with ONCEFLOW_FEED_LIMIT_PER_SUBSCRIBER=30/1m.
    const subscriber = `ts-${run}-flood`;
    const browser = new Onceflow({ baseUrl, token: (await onceflow.subscriberToken(subscriber)).token });
    let refused: OnceflowError | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      try {
        await browser.feedPage(subscriber);
      } catch (err) {
        if (!(err instanceof OnceflowError)) throw err;
        refused = err;
      }
    }
    assert.ok(refused, "40 requests within a minute were all served");
    assert.equal(refused.status, 429);
    assert.ok((refused.retryAfter ?? 0) >= 1, `Retry-After ${refused.retryAfter}`);
  });
});

async function* pagesOf(client: Onceflow, subscriber: string): AsyncGenerator<FeedItem[]> {
  let cursor: string | undefined;
  for (;;) {
    const page = await client.feedPage(subscriber, { limit: 2, ...(cursor ? { cursor } : {}) });
    yield page.items;
    if (page.next_cursor === null) return;
    cursor = page.next_cursor;
  }
}

describe("broadcasts", () => {
  it("page through every failed recipient", async () => {
    const key = `ts-${run}-broadcast`;
    // Webhooks to a port nobody listens on on an address the dev stack's
    // egress guard refuses: each recipient fails without retry.
    const recipients = [1, 2, 3, 4, 5].map((i) => ({ id: `r${i}`, to: `http://169.254.169.254/hook-${i}` }));
    await onceflow.broadcast({ key, channel: "webhook", recipients, body: "news" });
    const status = await until("the broadcast", () => onceflow.broadcastStatus(key), (s) => s.execution !== "running");
    assert.equal(status.failed, 5);
    const ids: string[] = [];
    for await (const p of onceflow.broadcastProblems(key, { limit: 2 })) ids.push(p.id);
    assert.deepEqual(ids.sort(), recipients.map((r) => r.id));
  });
});
