// A thin client for Onceflow's HTTP API. The types come from the OpenAPI
// document (src/schema.ts, generated: npm run generate); what is written by
// hand here is what a generated client does not know: the Idempotency-Key
// header's quoting, following pages, the feed's event stream and verifying
// webhooks. Every other route is reachable, typed, through `api`.
import createClient, { type Client } from "openapi-fetch";
import { EventSource } from "eventsource";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import type { components, paths } from "./schema.js";

export type { components, paths, operations, webhooks } from "./schema.js";

type Schemas = components["schemas"];
export type Notification = Schemas["Notification"];
export type Accepted = Schemas["Accepted"];
export type NotificationStatus = Schemas["NotificationStatus"];
export type DeliveryResult = Schemas["DeliveryResult"];
export type Broadcast = Schemas["Broadcast"];
export type BroadcastStatus = Schemas["BroadcastStatus"];
export type Preferences = Schemas["Preferences"];
export type FeedItem = Schemas["FeedItem"];
export type FeedPage = Schemas["FeedPage"];
export type SubscriberToken = Schemas["SubscriberToken"];
export type Revoked = Schemas["Revoked"];
export type Problem = Schemas["Problem"];
export type WebhookPayload = Schemas["WebhookPayload"];

/**
 * An answer that is not a success: the RFC 9457 problem the server sent,
 * with its `field` naming the offending field, header or parameter.
 */
export class OnceflowError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;
  readonly field: string | undefined;
  /** Seconds to wait before trying again, from Retry-After (429, 503). */
  readonly retryAfter: number | undefined;

  constructor(status: number, problem: Problem | undefined, what: string, retryAfter?: number) {
    const detail = problem?.detail ?? `HTTP ${status}`;
    super(`onceflow: ${what}: ${detail}${problem?.field ? ` (field ${problem.field})` : ""}`);
    this.name = "OnceflowError";
    this.status = status;
    this.problem = problem;
    this.field = problem?.field;
    this.retryAfter = retryAfter;
  }
}

/**
 * quoteIdempotencyKey renders a key as the Idempotency-Key header wants it:
 * an RFC 8941 sf-string, in double quotes with `\` and `"` escaped. Only
 * printable ASCII can be quoted; anything else is refused here rather than
 * sent.
 */
export function quoteIdempotencyKey(key: string): string {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      throw new RangeError(`onceflow: idempotency key has a character other than printable ASCII at position ${i}`);
    }
  }
  return `"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface ClientOptions {
  /** The API's address, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /**
   * The app's API token (a line of the server's token file), or a
   * subscriber token for a browser that reads one subscriber's feed.
   * Without it, requests carry no Authorization (a server on loopback
   * without a token file).
   */
  token?: string;
  /** A fetch implementation; the global fetch by default. */
  fetch?: typeof globalThis.fetch;
}

export interface PageOptions {
  /** Entries per page, 1 to 100 (20 by default). */
  limit?: number;
  /** Start after this cursor (a page's next_cursor) instead of the first page. */
  cursor?: string;
}

export interface FeedStreamOptions {
  /** Called for each new item, oldest first. */
  onItem: (item: FeedItem) => void;
  /** Called each time the connection opens (again, after a reconnect). */
  onOpen?: () => void;
  /** Called when the connection fails; EventSource reconnects by itself, resuming after the last item seen. */
  onError?: (err: Event) => void;
  /** Start after this item cursor: missed items newer than it come first. */
  after?: string;
}

/** An open feed stream; close it when done. */
export interface FeedStream {
  close(): void;
}

export class Onceflow {
  /** Every route of the OpenAPI document, typed (openapi-fetch). */
  readonly api: Client<paths>;
  private readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token;
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
    const headers: Record<string, string> = {};
    if (opts.token) headers["Authorization"] = `Bearer ${opts.token}`;
    this.api = createClient<paths>({ baseUrl: this.baseUrl, headers, fetch: this.fetchImpl });
  }

  /**
   * Starts a notification. The same key with the same payload again is
   * answered as the first time (nothing is sent twice); the same key with
   * another payload is a 422 OnceflowError.
   */
  async send(notification: Notification & { key: string }): Promise<Accepted> {
    const { data, error, response } = await this.api.POST("/v1/notifications", {
      params: { header: { "Idempotency-Key": quoteIdempotencyKey(notification.key) } },
      body: notification,
    });
    return must(data, error, response, `send ${notification.key}`);
  }

  /** Where a notification stands, delivery by delivery. */
  async status(key: string): Promise<NotificationStatus> {
    const { data, error, response } = await this.api.GET("/v1/notifications/{key}", { params: { path: { key } } });
    return must(data, error, response, `status of ${key}`);
  }

  /** Cancels what a notification has not sent yet. */
  async cancel(key: string): Promise<void> {
    const { data, error, response } = await this.api.DELETE("/v1/notifications/{key}", { params: { path: { key } } });
    must(data, error, response, `cancel ${key}`);
  }

  /** Starts a broadcast: one message to many recipients, each once. */
  async broadcast(b: Broadcast & { key: string }): Promise<Accepted> {
    const { data, error, response } = await this.api.POST("/v1/broadcasts", {
      params: { header: { "Idempotency-Key": quoteIdempotencyKey(b.key) } },
      body: b,
    });
    return must(data, error, response, `broadcast ${b.key}`);
  }

  /** A broadcast's counts and one page of its failed and ambiguous recipients. */
  async broadcastStatus(key: string, page: PageOptions = {}): Promise<BroadcastStatus> {
    const { data, error, response } = await this.api.GET("/v1/broadcasts/{key}", {
      params: { path: { key }, query: page },
    });
    return must(data, error, response, `status of broadcast ${key}`);
  }

  /** Every failed and ambiguous recipient of a broadcast, page after page. */
  async *broadcastProblems(key: string, page: PageOptions = {}): AsyncGenerator<BroadcastStatus["problems"][number]> {
    for await (const p of pages((cursor) => this.broadcastStatus(key, { ...page, cursor }), page.cursor)) {
      yield* p.problems;
    }
  }

  /** One page of a subscriber's in-app feed, newest first. */
  async feedPage(subscriber: string, page: PageOptions = {}): Promise<FeedPage> {
    const { data, error, response } = await this.api.GET("/v1/subscribers/{id}/feed", {
      params: { path: { id: subscriber }, query: page },
    });
    return must(data, error, response, `feed of ${subscriber}`);
  }

  /** Every item of a subscriber's feed, newest first, page after page. */
  async *feed(subscriber: string, page: PageOptions = {}): AsyncGenerator<FeedItem> {
    for await (const p of pages((cursor) => this.feedPage(subscriber, { ...page, cursor }), page.cursor)) {
      yield* p.items;
    }
  }

  /**
   * Mints a short-lived token that reads one subscriber's feed: for the
   * app's backend to hand to that subscriber's browser.
   */
  async subscriberToken(subscriber: string, ttl?: string): Promise<SubscriberToken> {
    const { data, error, response } = await this.api.POST("/v1/subscribers/{id}/tokens", {
      params: { path: { id: subscriber } },
      body: ttl ? { ttl } : {},
    });
    return must(data, error, response, `token for ${subscriber}`);
  }

  /**
   * Revokes every subscriber token and unsubscribe link issued to the
   * subscriber until now (in the caller's tenant); what is issued
   * afterwards works.
   */
  async revokeSubscriber(subscriber: string): Promise<Revoked> {
    const { data, error, response } = await this.api.POST("/v1/subscribers/{id}/revoke", {
      params: { path: { id: subscriber } },
    });
    return must(data, error, response, `revoke ${subscriber}'s tokens and links`);
  }

  /**
   * Opens the subscriber's feed stream (Server-Sent Events). The token
   * travels in the Authorization header, never in the URL. On a dropped
   * connection EventSource reconnects with Last-Event-ID, and the server
   * sends what was missed first.
   */
  streamFeed(subscriber: string, opts: FeedStreamOptions): FeedStream {
    const url = new URL(`${this.baseUrl}/v1/subscribers/${encodeURIComponent(subscriber)}/feed/stream`);
    if (opts.after) url.searchParams.set("after", opts.after);
    const token = this.token;
    const fetchImpl = this.fetchImpl;
    const source = new EventSource(url, {
      fetch: (input, init) =>
        fetchImpl(input, {
          ...init,
          headers: { ...init.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        }),
    });
    source.addEventListener("item", (ev) => opts.onItem(JSON.parse((ev as MessageEvent<string>).data) as FeedItem));
    if (opts.onOpen) source.addEventListener("open", () => opts.onOpen?.());
    if (opts.onError) source.addEventListener("error", opts.onError);
    return { close: () => source.close() };
  }
}

/**
 * pages fetches page after page, each with the cursor the one before gave,
 * until a page's next_cursor is null.
 */
export async function* pages<P extends { next_cursor: string | null }>(
  fetchPage: (cursor: string | undefined) => Promise<P>,
  first?: string,
): AsyncGenerator<P> {
  let cursor: string | undefined = first;
  for (;;) {
    const page = await fetchPage(cursor);
    yield page;
    if (page.next_cursor === null) return;
    cursor = page.next_cursor;
  }
}

function must<T>(data: T | undefined, error: unknown, response: Response, what: string): T {
  if (!response.ok) {
    const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new OnceflowError(response.status, isProblem(error) ? error : undefined, what, Number.isNaN(retry) ? undefined : retry);
  }
  return data as T;
}

function isProblem(v: unknown): v is Problem {
  return typeof v === "object" && v !== null && "status" in v && "detail" in v;
}

/** A webhook that verified: its delivery ID (apply it once per ID) and body. */
export interface VerifiedWebhook {
  /** The delivery ID: the same on every retry of one delivery. */
  id: string;
  payload: WebhookPayload;
}

/**
 * verifyWebhook checks a webhook's Standard Webhooks signature with the
 * official library and returns its delivery ID and payload; it throws when
 * no secret verifies it or its timestamp is more than five minutes off.
 * Pass the raw body, as received: a re-serialized body does not verify.
 * Give several secrets while ONCEFLOW_WEBHOOK_SECRET is being rotated.
 */
export function verifyWebhook(
  secrets: string | string[],
  rawBody: string | Uint8Array,
  headers: Headers | Record<string, string | string[] | undefined>,
): VerifiedWebhook {
  const h = headerRecord(headers);
  let last: unknown = new WebhookVerificationError("No secret given");
  for (const secret of Array.isArray(secrets) ? secrets : [secrets]) {
    try {
      const payload = new Webhook(secret).verify(rawBody, h) as WebhookPayload;
      return { id: h["webhook-id"] ?? "", payload };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

function headerRecord(headers: Headers | Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof (headers as Headers).forEach === "function" && typeof (headers as Headers).get === "function") {
    (headers as Headers).forEach((v, k) => (out[k.toLowerCase()] = v));
    return out;
  }
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

export { WebhookVerificationError };
