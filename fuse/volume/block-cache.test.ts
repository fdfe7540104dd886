import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BlockCache } from "./block-cache.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A cache over an in-memory "server" that counts fetches per hash and can hold them. */
async function cacheOf(blocks: Record<string, string>, maxBytes: number) {
  const dir = join(mkdtempSync(join(tmpdir(), "silo-block-cache-")), "cache");
  dirs.push(join(dir, ".."));
  const fetches = new Map<string, number>();
  let hold: Promise<void> | undefined;
  const cache = new BlockCache(dir, maxBytes, async (hash) => {
    fetches.set(hash, (fetches.get(hash) ?? 0) + 1);
    await hold;
    const data = blocks[hash];
    if (data === undefined) throw new Error(`no block ${hash}`);
    return Buffer.from(data);
  });
  await cache.init();
  return { cache, dir, fetches, holdFetches: (p: Promise<void>) => (hold = p) };
}

describe("BlockCache", () => {
  it("reads a range of a block and the whole block", async () => {
    const { cache } = await cacheOf({ h1: "hello world" }, 1000);
    const buf = Buffer.alloc(8, "-");
    expect(await cache.read("h1", 6, buf, 2, 5)).toBe(5);
    expect(buf.toString()).toBe("--world-");
    expect((await cache.get("h1")).toString()).toBe("hello world");
    // Past the end reads short.
    expect(await cache.read("h1", 9, Buffer.alloc(10), 0, 10)).toBe(2);
  });

  it("getOnce serves a cached block without fetching, and fetches an uncached one without keeping it", async () => {
    const { cache, fetches } = await cacheOf({ h1: "cached", h2: "read once" }, 1000);
    await cache.get("h1");
    expect((await cache.getOnce("h1")).toString()).toBe("cached");
    expect(fetches.get("h1")).toBe(1);
    expect((await cache.getOnce("h2")).toString()).toBe("read once");
    expect(cache.sizeBytes).toBe("cached".length);
    expect(cache.stats()).toMatchObject({ bytesFetched: "cached".length + "read once".length, misses: 2, hits: 1 });
    await cache.getOnce("h2");
    expect(fetches.get("h2")).toBe(2);
    await cache.close();
  });

  it("put keeps a block made here: reads of it fetch nothing", async () => {
    const { cache, fetches } = await cacheOf({}, 1000);
    expect(cache.has("made")).toBe(false);
    await cache.put("made", Buffer.from("new bytes"));
    expect(cache.has("made")).toBe(true);
    expect((await cache.get("made")).toString()).toBe("new bytes");
    await cache.put("made", Buffer.from("ignored"));
    expect((await cache.get("made")).toString()).toBe("new bytes");
    expect(fetches.size).toBe(0);
    expect(cache.sizeBytes).toBe("new bytes".length);
    await cache.close();
  });

  it("fetches a block once for concurrent readers (single flight) and serves repeats from disk", async () => {
    const { cache, fetches, holdFetches } = await cacheOf({ h: "abc" }, 1000);
    let release!: () => void;
    holdFetches(new Promise<void>((r) => (release = r)));
    const reads = Array.from({ length: 5 }, () => cache.get("h"));
    release();
    expect((await Promise.all(reads)).map(String)).toEqual(Array(5).fill("abc"));
    await cache.get("h");
    expect(fetches.get("h")).toBe(1);
  });

  it("evicts least recently used blocks past maxBytes, and refetches them when asked again", async () => {
    const { cache, dir, fetches } = await cacheOf({ a: "aaaa", b: "bbbb", c: "cccc" }, 8);
    await cache.get("a");
    await cache.get("b");
    await cache.get("a"); // a is now the most recently used
    await cache.get("c"); // 12 bytes > 8: b goes
    expect(cache.sizeBytes).toBe(8);
    expect(readdirSync(dir).sort()).toEqual(["a", "c"]);
    await cache.get("a");
    expect(fetches.get("a")).toBe(1);
    await cache.get("b");
    expect(fetches.get("b")).toBe(2);
  });

  it("a failed fetch fails the read and a later read tries again", async () => {
    const blocks: Record<string, string> = {};
    const { cache, fetches } = await cacheOf(blocks, 100);
    await expect(cache.get("x")).rejects.toThrow("no block x");
    blocks.x = "late";
    expect((await cache.get("x")).toString()).toBe("late");
    expect(fetches.get("x")).toBe(2);
  });

  it("prefetch loads blocks ahead of the read, ignoring failures", async () => {
    const { cache, fetches } = await cacheOf({ p: "pp" }, 100);
    cache.prefetch(["p", "missing"]);
    expect((await cache.get("p")).toString()).toBe("pp");
    expect(fetches.get("p")).toBe(1);
    expect(fetches.get("missing")).toBe(1);
  });
});
