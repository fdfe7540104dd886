import { join } from "node:path";
import { open } from "lmdb";
import { describe, expect, it } from "vitest";
import { eventually, sleep } from "./helpers/eventually.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const TTL_MS = 3000;

const fx = siloServerFixture(["--dict-entry-ttl-ms", String(TTL_MS)]);

/** Rows the server's LMDB still holds for a dict (read from this process; LMDB allows that). */
function storedRows(dictId: string): number {
  const env = open({ path: join(fx.server.home, "data/kv"), readOnly: true, maxDbs: 64 });
  try {
    const entries = env.openDB({ name: "dict-entries", keyEncoding: "binary", encoding: "binary" });
    const start = Buffer.from(dictId, "latin1");
    const end = Buffer.from(start);
    end[end.length - 1]! += 1;
    return entries.getKeysCount({ start, end });
  } finally {
    void env.close();
  }
}

describe("Dict entry expiry (--dict-entry-ttl-ms)", () => {
  it("an entry expires after the TTL without reads or writes; reads and writes extend it; expired rows are swept", async () => {
    const d = await fx.silo.dicts.fromName<string, string>("ttl", { createIfMissing: true });
    await d.update([["read", "r"], ["idle", "i"], ["rewritten", "w"]]);
    await sleep(TTL_MS / 2);
    expect(await d.get("read")).toBe("r");
    await d.put("rewritten", "w2");
    await sleep(TTL_MS / 2 + 300);

    // "idle" is past its TTL: invisible to every read at once.
    expect(await d.get("idle")).toBeUndefined();
    expect(await d.contains("idle")).toBe(false);
    expect(await d.put("idle", "again", { skipIfExists: true })).toBe(true);
    expect(await d.pop("idle")).toBe("again");
    expect(await d.get("read")).toBe("r");
    expect(await d.get("rewritten")).toBe("w2");
    expect(await d.len()).toBe(2);
    const keys: string[] = [];
    for await (const k of d.keys()) keys.push(k);
    expect(keys.sort()).toEqual(["read", "rewritten"]);

    // Without further access everything expires, and the sweeper deletes the rows.
    await sleep(TTL_MS + 300);
    expect(await d.len()).toBe(0);
    expect(await d.get("read")).toBeUndefined();
    await eventually(() => expect(storedRows(d.id)).toBe(0), 10_000, 200);
  });

  it("a clean shutdown writes pending touches and exits 0", async () => {
    const d = await fx.silo.dicts.fromName<string, number>("shutdown", { createIfMissing: true });
    await d.put("k", 1);
    await sleep(TTL_MS * 0.6);
    expect(await d.get("k")).toBe(1); // notes a touch; SIGTERM comes before the next touch batch
    await fx.server.stop("SIGTERM");
    expect(fx.server.proc?.exitCode).toBe(0);
    expect(fx.server.logs()).not.toMatch(/failed|closed/);
    await fx.server.launch();
    await sleep(TTL_MS * 0.6);
    // Past the TTL counted from the put: only the persisted touch keeps it.
    await using after = fx.server.client();
    expect(await (await after.dicts.fromName<string, number>("shutdown")).get("k")).toBe(1);
    await fx.silo.close();
    fx.silo = fx.server.client();
  });

  it("a dict in steady use keeps its entries past the TTL", async () => {
    const d = await fx.silo.dicts.fromName<string, number>("busy", { createIfMissing: true });
    await d.put("hot", 1);
    for (let t = 0; t < TTL_MS * 1.5; t += TTL_MS / 4) {
      await sleep(TTL_MS / 4);
      expect(await d.get("hot")).toBe(1);
    }
    expect(storedRows(d.id)).toBe(1);
  });
});
