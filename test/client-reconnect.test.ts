/**
 * A kept-alive connection the server closed while the client did not look (its event loop was
 * blocked past the server's keep-alive timeout) fails the next request written on it. A TCP
 * relay in front of a real server closes each connection, unanswered, at its second request.
 */
import { describe, expect, it, vi } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";
import { relay } from "./helpers/tcp-relay.js";

const fx = siloServerFixture();

describe("a request on a kept-alive connection the server closed unanswered", () => {
  it("is sent again on a new connection when it is idempotent", async () => {
    const queue = await fx.silo.queues.fromName("reconnect", { createIfMissing: true });
    await queue.put("first");
    const r = await relay(fx.server.port!, "close-kept-alive");
    await using silo = fx.server.client({ serverUrl: r.url });
    try {
      const q = await silo.queues.fromName("reconnect");
      // GETs, each the second request on a connection: answered after one more attempt.
      expect(await q.len()).toBe(1);
      expect(await q.len()).toBe(1);
    } finally {
      await r.close();
    }
  });

  it("is not written at all after the client was idle longer than it keeps a connection: a POST goes out on a new one", async () => {
    const queue = await fx.silo.queues.fromName("reconnect-idle", { createIfMissing: true });
    const r = await relay(fx.server.port!, "close-kept-alive");
    await using silo = fx.server.client({ serverUrl: r.url });
    try {
      const q = await silo.queues.fromName("reconnect-idle");
      expect(await q.len()).toBe(0);
      // The client's clock moves past its keep-alive time (its event loop, say, was blocked):
      // the put is not resendable, so without a new connection it would meet the closed one.
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() + 31_000);
      await q.put("after a pause", { block: false });
    } finally {
      vi.useRealTimers();
      await r.close();
    }
    expect(await queue.len()).toBe(1);
  });
});
