import { existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BlockBuffers, FREE_BUFFERS } from "../../lib/block-buffers.js";
import { fuseFdAddon } from "../../lib/native-addon.js";
import { BlockCache, DIRECT_ALIGN, MAX_LOCAL_FILES, MAX_PREFETCHES } from "./block-cache.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A cache over an in-memory "server" that counts fetches per hash and can hold them. Blocks
 * land in the cache's pooled buffers (of `bufferSize` bytes) as the real client puts them there.
 */
async function cacheOf(blocks: Record<string, string>, maxBytes: number, recentBlocks?: number, maxWrites?: number, buffers = new BlockBuffers(64)) {
  const dir = join(mkdtempSync(join(tmpdir(), "silo-block-cache-")), "cache");
  dirs.push(join(dir, ".."));
  const fetches = new Map<string, number>();
  let hold: Promise<void> | undefined;
  const cache = new BlockCache(
    dir,
    maxBytes,
    async (hash, into) => {
      fetches.set(hash, (fetches.get(hash) ?? 0) + 1);
      await hold;
      const data = blocks[hash];
      if (data === undefined) throw new Error(`no block ${hash}`);
      if (data.length > into.length) return Buffer.from(data);
      return into.subarray(0, into.write(data));
    },
    { recentBlocks, buffers, maxWrites },
  );
  await cache.init();
  return { cache, dir, fetches, buffers, holdFetches: (p: Promise<void>) => (hold = p) };
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
    await cache.flushed();
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
    // put resolves once the block is in its cache file.
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
    // No blocks kept in memory: every read after the fetch is from the cache file.
    const { cache, dir, fetches } = await cacheOf({ a: "aaaa", b: "bbbb", c: "cccc" }, 8, 0);
    await cache.get("a");
    await cache.flushed();
    await cache.get("b");
    await cache.flushed();
    await cache.get("a"); // a is now the most recently used
    await cache.get("c"); // 12 bytes > 8: b goes
    await cache.flushed();
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

  it("serves a fetched block from memory when its cache file cannot be written, and keeps no copy", async () => {
    const { cache, dir, fetches } = await cacheOf({ h: "in memory" }, 1000);
    rmSync(dir, { recursive: true });
    const buf = Buffer.alloc(9);
    expect(await cache.read("h", 0, buf, 0, 9)).toBe(9);
    expect(buf.toString()).toBe("in memory");
    await cache.flushed();
    expect(existsSync(join(dir, "h"))).toBe(false);
    expect(cache.sizeBytes).toBe(0);
    // Still in memory: read again without a fetch.
    expect(cache.peek("h", 3, 6)?.toString()).toBe("memory");
    expect(fetches.get("h")).toBe(1);
  });

  it("get hands out a buffer of the caller's own: changing it never changes what reads see", async () => {
    const { cache } = await cacheOf({ h: "committed" }, 1000);
    const mine = await cache.get("h");
    mine.fill("x");
    expect((await cache.get("h")).toString()).toBe("committed");
    expect(cache.peek("h", 0, 9)?.toString()).toBe("committed");
    const once = await cache.getOnce("h");
    once.fill("y");
    expect(cache.peek("h", 0, 9)?.toString()).toBe("committed");
  });

  it("peek gives no view of a block not in memory or shorter than asked", async () => {
    const { cache } = await cacheOf({ h: "short" }, 1000);
    expect(cache.peek("h", 0, 1)).toBeUndefined();
    await cache.get("h");
    expect(cache.peek("h", 2, 4)).toBeUndefined();
    expect(cache.peek("h", 2, 3)?.toString()).toBe("ort");
  });

  it("keeps at most MAX_PREFETCHES read-ahead fetches in flight", async () => {
    const blocks = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`b${i}`, `block ${i}`]));
    const { cache, fetches, holdFetches } = await cacheOf(blocks, 1000);
    let release!: () => void;
    holdFetches(new Promise<void>((r) => (release = r)));
    cache.prefetch(Object.keys(blocks));
    expect(fetches.size).toBe(MAX_PREFETCHES);
    release();
    // A read of one not prefetched fetches it then.
    expect((await cache.get("b9")).toString()).toBe("block 9");
    expect(fetches.get("b9")).toBe(1);
  });

  it("a block's buffer is not refilled while its cache-file write still reads it", async () => {
    // Nothing kept in memory: once read, a block is held only by its cache-file write.
    const { cache, buffers } = await cacheOf({ a: "A".repeat(48), b: "B".repeat(48) }, 1000, 0);
    const buf = Buffer.alloc(48);
    await cache.read("a", 0, buf, 0, 48);
    // Fetched while a's write is under way: must land in another buffer.
    await cache.read("b", 0, buf, 0, 48);
    await cache.flushed();
    expect(buffers.allocated).toBe(2);
    // Both from their cache files now.
    expect(cache.peek("a", 0, 1)).toBeUndefined();
    await cache.read("a", 0, buf, 0, 48);
    expect(buf.toString()).toBe("A".repeat(48));
    await cache.read("b", 0, buf, 0, 48);
    expect(buf.toString()).toBe("B".repeat(48));
    await cache.close();
  });

  it("reuses a block's buffer once every holder is done, and every buffer comes back", async () => {
    const blocks = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`b${i}`, `block ${i}`]));
    const { cache, buffers, holdFetches } = await cacheOf(blocks, 1000, 0);
    for (const h of Object.keys(blocks)) {
      expect((await cache.getOnce(h)).toString()).toBe(blocks[h]);
    }
    // Read once each, no cache file: one buffer served all of them.
    expect(buffers.allocated).toBe(1);
    // Several readers waiting for one fetch each get their own reference (a missing one would be released twice and throw).
    let release!: () => void;
    holdFetches(new Promise<void>((r) => (release = r)));
    const waiting = [cache.get("b1"), cache.get("b1"), cache.read("b1", 0, Buffer.alloc(7), 0, 7), cache.get("b2")];
    cache.prefetch(["b3", "missing"]);
    release();
    expect((await Promise.all(waiting)).map(String)).toEqual(["block 1", "block 1", "7", "block 2"]);
    await cache.get("b3");
    await cache.flushed();
    expect(buffers.freeCount).toBe(Math.min(buffers.allocated, FREE_BUFFERS));
    await cache.close();
  });

  it("a view of a block that had to be fetched keeps its buffer until the next turn of the event loop", async () => {
    // Neither kept in memory nor written: the reader that waited is the block's only holder.
    const { cache, buffers, holdFetches } = await cacheOf({ a: "A".repeat(48), b: "B".repeat(48) }, 1000, 0, 0);
    let release!: () => void;
    holdFetches(new Promise<void>((r) => (release = r)));
    const pending = cache.viewSoon("a", 0, 48);
    release();
    const view = (await pending)!;
    // A fetch started in the same turn (a FUSE reply made of `view` goes out in it) takes another buffer.
    const other = cache.getOnce("b");
    expect((await other).toString()).toBe("B".repeat(48));
    expect(view.toString()).toBe("A".repeat(48));
    expect(buffers.allocated).toBe(2);
    await new Promise((r) => setImmediate(r));
    // Now both are back.
    expect(buffers.freeCount).toBe(2);
  });

  it("viewSoon gives no view of a block in its cache file (the caller copies from there)", async () => {
    const { cache } = await cacheOf({ a: "on disk" }, 1000, 0);
    await cache.get("a");
    await cache.flushed();
    expect(await cache.viewSoon("a", 0, 7)).toBeUndefined();
    expect((await cache.get("a")).toString()).toBe("on disk");
  });

  describe("cache files written with O_DIRECT", () => {
    const page = (c: string) => c.repeat(DIRECT_ALIGN);
    const aligned = () => new BlockBuffers(3 * DIRECT_ALIGN, FREE_BUFFERS, (n) => fuseFdAddon().alignedBuffer!(n));

    it("writes whole pages from aligned buffers with O_DIRECT, a partial block through the page cache, and reads both back exactly", async () => {
      const blocks = { a: page("a") + page("b"), tail: "t".repeat(5000) };
      const { cache } = await cacheOf(blocks, 100_000, 0, undefined, aligned());
      for (const h of Object.keys(blocks)) await cache.get(h);
      await cache.flushed();
      expect(cache.directWrites).toBe(1);
      expect(cache.sizeBytes).toBe(2 * DIRECT_ALIGN + 5000);
      // From the cache files (nothing kept in memory).
      expect(cache.peek("a", 0, 1)).toBeUndefined();
      for (const [h, data] of Object.entries(blocks)) expect((await cache.get(h)).toString()).toBe(data);
      await cache.close();
    });

    it("a block's aligned buffer is not refilled while its O_DIRECT write still reads it", async () => {
      const blocks = { a: page("A").repeat(3), b: page("B").repeat(3) };
      const { cache, buffers } = await cacheOf(blocks, 100_000, 0, undefined, aligned());
      const buf = Buffer.alloc(3 * DIRECT_ALIGN);
      await cache.read("a", 0, buf, 0, buf.length);
      // Fetched while a's write is under way: must land in another buffer.
      await cache.read("b", 0, buf, 0, buf.length);
      await cache.flushed();
      expect(cache.directWrites).toBe(2);
      expect(buffers.allocated).toBe(2);
      for (const [h, data] of Object.entries(blocks)) expect((await cache.get(h)).toString()).toBe(data);
      await cache.close();
    });

    it("a write O_DIRECT refuses is made through the page cache, and the block is kept whole", async () => {
      // Claims page alignment but is one byte off: the kernel refuses the O_DIRECT write (EINVAL).
      const misaligned = new BlockBuffers(2 * DIRECT_ALIGN, FREE_BUFFERS, (n) => Buffer.allocUnsafeSlow(n + 1).subarray(1));
      const blocks = { a: page("x") + page("y"), b: page("z") + page("w") };
      const { cache } = await cacheOf(blocks, 100_000, 0, undefined, misaligned);
      for (const h of Object.keys(blocks)) await cache.get(h);
      await cache.flushed();
      expect(cache.directWrites).toBe(0);
      expect(cache.sizeBytes).toBe(4 * DIRECT_ALIGN);
      for (const [h, data] of Object.entries(blocks)) expect((await cache.get(h)).toString()).toBe(data);
      await cache.close();
    });
  });
});

describe("BlockCache with local block reads", () => {
  /** A cache whose fetch answers each block with a file of its own, open (as a server's passed blob file). */
  async function localCache(n: number, recentBlocks = 1) {
    const root = mkdtempSync(join(tmpdir(), "silo-block-cache-local-"));
    dirs.push(root);
    const files = new Map<string, string>();
    for (let i = 0; i < n; i++) {
      files.set(`h${i}`, join(root, `blob${i}`));
      writeFileSync(join(root, `blob${i}`), `block number ${i}`);
    }
    const fetches = new Map<string, number>();
    const cache = new BlockCache(join(root, "cache"), 1000, async (hash, into) => {
      fetches.set(hash, (fetches.get(hash) ?? 0) + 1);
      const fh = await open(files.get(hash)!, "r");
      const { bytesRead } = await fh.read(into, 0, into.length, 0);
      return { data: into.subarray(0, bytesRead), fh };
    }, { recentBlocks, buffers: new BlockBuffers(64) });
    await cache.init();
    return { cache, files, fetches, root };
  }

  it("keeps the passed file as the block's entry: no cache file, readable after the block left memory and after the file was deleted", async () => {
    const { cache, files, fetches, root } = await localCache(3);
    for (const h of ["h0", "h1", "h2"]) expect((await cache.get(h)).toString()).toBe(`block number ${h.slice(1)}`);
    await cache.flushed();
    expect(cache.stats()).toMatchObject({ localBlocks: 3, sizeBytes: 0 });
    expect(readdirSync(join(root, "cache"))).toEqual([]);
    // h0 left the recent list (1 block): read from its kept file, even once the server deleted it.
    unlinkSync(files.get("h0")!);
    expect(cache.has("h0")).toBe(true);
    const buf = Buffer.alloc(6);
    expect(await cache.read("h0", 6, buf, 0, 6)).toBe(6);
    expect(buf.toString()).toBe("number");
    expect(fetches.get("h0")).toBe(1);
    await cache.close();
  });

  it(`keeps at most ${MAX_LOCAL_FILES} files open, closing the least recently used`, async () => {
    const { cache, fetches } = await localCache(MAX_LOCAL_FILES + 2);
    for (let i = 0; i < MAX_LOCAL_FILES + 2; i++) await cache.get(`h${i}`);
    await cache.flushed();
    expect(cache.has("h0") || cache.has("h1")).toBe(false);
    expect(cache.has(`h${MAX_LOCAL_FILES + 1}`)).toBe(true);
    // A closed one is fetched again.
    await cache.get("h0");
    expect(fetches.get("h0")).toBe(2);
    await cache.close();
  });
});
