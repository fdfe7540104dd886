import { describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";

const TTL_MS = 60_000;
const fx = siloServerFixture(["--dict-entry-ttl-ms", String(TTL_MS)]);

describe("dict scan with expiry", () => {
  it("answers when each entry expires, only when asked", async () => {
    const d = await fx.silo.dicts.fromName<string, number>("scan-expiry", { createIfMissing: true });
    const before = Date.now();
    await d.update({ a: 1, b: 2 });
    const after = Date.now();
    const scan = async (body: Record<string, unknown>) => {
      const res = await fetch(`${fx.server.url}/v1/dicts/${d.id}/scan`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { entries: unknown[]; cursor: unknown; expiresAt?: number[] };
    };
    const page = await scan({ expiry: true });
    expect(page.entries).toHaveLength(2);
    expect(page.expiresAt).toHaveLength(2);
    for (const t of page.expiresAt!) {
      expect(t).toBeGreaterThanOrEqual(before + TTL_MS);
      expect(t).toBeLessThanOrEqual(after + TTL_MS);
    }
    expect(await scan({})).not.toHaveProperty("expiresAt");
    // Paged: one entry and its expiry per page.
    const first = await scan({ expiry: true, limit: 1 });
    expect(first.entries).toHaveLength(1);
    expect(first.expiresAt).toHaveLength(1);
  });
});
