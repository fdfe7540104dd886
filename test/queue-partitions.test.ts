import { describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

describe("GET /v1/queues/:id/partitions", () => {
  it("lists partitions in key order with items and expiry, null for the default, and truncates at the limit", async () => {
    const q = await fx.silo.queues.fromName<number>("parts", { createIfMissing: true });
    await q.putMany([1, 2, 3]);
    await q.put(4, { partition: "b" });
    await q.put(5, { partition: "a", partitionTtlMs: 60_000 });
    const auth = { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}` };
    const list = async (query = "") => {
      const res = await fetch(`${fx.server.url}/v1/queues/${q.id}/partitions${query}`, { headers: auth });
      expect(res.status).toBe(200);
      return (await res.json()) as { partitions: Array<{ partition: string | null; items: number; expiresAt: number }>; truncated: boolean };
    };
    const before = Date.now();
    const all = await list();
    expect(all.truncated).toBe(false);
    expect(all.partitions.map((p) => [p.partition, p.items])).toEqual([
      [null, 3],
      ["a", 1],
      ["b", 1],
    ]);
    const a = all.partitions[1]!;
    expect(a.expiresAt).toBeGreaterThan(before);
    expect(a.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);

    expect(await list("?limit=1")).toEqual({ partitions: [expect.objectContaining({ partition: null })], truncated: true });
    // A cleared partition is gone from the list.
    await q.clear({ partition: "b" });
    expect((await list()).partitions.map((p) => p.partition)).toEqual([null, "a"]);
    expect((await fetch(`${fx.server.url}/v1/queues/${q.id}/partitions?limit=0`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${fx.server.url}/v1/queues/qu-missing/partitions`, { headers: auth })).status).toBe(404);
  });
});
