// The README's example: it compiles under tsc --strict with the rest of
// the client (npm run build), so the README cannot drift from the types.
import { Onceflow, verifyWebhook } from "@onceflow/client";

export async function quickstart(token: string, webhookSecret: string): Promise<void> {
  const onceflow = new Onceflow({ baseUrl: "http://127.0.0.1:8080", token });

  // Effectively once: the same key again is answered as the first time.
  const accepted = await onceflow.send({
    key: "order-1234-shipped",
    deliveries: [{ channel: "webhook", to: "https://partner.example/hooks" }],
    template: "order-shipped",
    data: { order: 1234, items: [{ sku: "A-1", qty: 2 }] },
  });
  console.log(accepted.status_url);

  const status = await onceflow.status("order-1234-shipped");
  for (const d of status.result.deliveries ?? []) console.log(d.channel, d.status, d.reason ?? "");

  // Every page of a subscriber's feed, and new items as they come.
  for await (const item of onceflow.feed("user-42")) console.log(item.subject, item.read);
  const stream = onceflow.streamFeed("user-42", { onItem: (item) => console.log("new:", item.body) });
  stream.close();

  // In the partner's receiver: the raw body and the headers as received.
  const { id, payload } = verifyWebhook(webhookSecret, '{"type":"notification"}', { "webhook-id": "..." });
  console.log(id, payload.data.key);
}
