import { join } from "node:path";
import { open } from "lmdb";
import { describe, expect, it } from "vitest";
import { eventually } from "./helpers/eventually.js";
import { inProcessFixture } from "./helpers/in-process-server.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const TTL_MS = 3000;
/** The server sweeps expired rows every TTL/4. */
const SWEEP_MS = TTL_MS / 4;

// Time is the server's TestClock: nothing here waits for real time to pass.
const fx = inProcessFixture({ dictEntryTtlMs: TTL_MS });

/** Rows the server's LMDB still holds for a dict (LMDB allows a second reader of the same files). */
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
    const { clock } = fx.server;
    const d = await fx.silo.dicts.fromName<string, string>("ttl", { createIfMissing: true });
    await d.update([["read", "r"], ["idle", "i"], ["rewritten", "w"]]);
    await clock.advance(TTL_MS / 2);
    expect(await d.get("read")).toBe("r");
    await d.put("rewritten", "w2");
    await clock.advance(TTL_MS / 2 - 1);
    // One millisecond before the TTL everything is still there (len does not extend TTLs).
    expect(await d.len()).toBe(3);
    await clock.advance(1);

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
    await clock.advance(TTL_MS);
    expect(await d.len()).toBe(0);
    expect(await d.get("read")).toBeUndefined();
    await eventually(async () => {
      await clock.advance(SWEEP_MS);
      expect(storedRows(d.id)).toBe(0);
    });
  });

  it("a clean shutdown writes pending touches", async () => {
    const { clock } = fx.server;
    const d = await fx.silo.dicts.fromName<string, number>("shutdown", { createIfMissing: true });
    await d.put("k", 1);
    await clock.advance(TTL_MS * 0.6);
    // Notes a touch; the clock stands still, so no touch batch runs before the shutdown.
    expect(await d.get("k")).toBe(1);
    await fx.silo.close();
    await fx.server.restart();
    fx.silo = fx.server.client();
    await clock.advance(TTL_MS * 0.6);
    // Past the TTL counted from the put: only the persisted touch keeps it (len does not touch).
    const after = await fx.silo.dicts.fromName<string, number>("shutdown");
    expect(await after.len()).toBe(1);
    // And it lapses a TTL after that touch.
    await clock.advance(TTL_MS * 0.4);
    expect(await after.len()).toBe(0);
  });

  it("a dict in steady use keeps its entries past the TTL", async () => {
    const { clock } = fx.server;
    const d = await fx.silo.dicts.fromName<string, number>("busy", { createIfMissing: true });
    await d.put("hot", 1);
    for (let t = 0; t < TTL_MS * 3; t += TTL_MS / 4) {
      await clock.advance(TTL_MS / 4);
      expect(await d.get("hot")).toBe(1);
    }
    expect(storedRows(d.id)).toBe(1);
  });
});

describe("silo serve on SIGTERM", () => {
  // The default TTL (days): nothing here may expire while a loaded machine restarts the server.
  const real = siloServerFixture();

  it("writes pending touches, exits 0 and logs no failure", async () => {
    const d = await real.silo.dicts.fromName<string, number>("sigterm", { createIfMissing: true });
    await d.put("k", 1);
    expect(await d.get("k")).toBe(1);
    await real.server.stop("SIGTERM");
    expect(real.server.proc?.exitCode).toBe(0);
    expect(real.server.logs()).not.toMatch(/failed|closed/);
    await real.server.launch();
    await real.silo.close();
    real.silo = real.server.client();
    expect(await (await real.silo.dicts.fromName<string, number>("sigterm")).get("k")).toBe(1);
  });
});
