import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import { BlockCache } from "./block-cache.js";
import { ContentStore, FileContent, blockCount, sha256 } from "./file-content.js";

const dirs: string[] = [];
const caches: BlockCache[] = [];
afterEach(async () => {
  // The cache keeps a descriptor open per cached block: close them (not the garbage collector).
  for (const c of caches.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A content store over committed blocks held in memory (the "server"). */
async function storeOf(blocks: Buffer[]) {
  const root = mkdtempSync(join(tmpdir(), "silo-content-"));
  dirs.push(root);
  const byHash = new Map(blocks.map((b) => [sha256(b), b]));
  const cache = new BlockCache(join(root, "cache"), 64 * BLOCK_SIZE, async (h) => byHash.get(h)!);
  await cache.init();
  caches.push(cache);
  mkdirSync(join(root, "upper"));
  const store = new ContentStore(join(root, "upper"), cache);
  const committed = () => new FileContent(blocks.reduce((n, b) => n + b.length, 0), blocks.map(sha256));
  return { store, committed };
}

async function readAll(store: ContentStore, c: FileContent): Promise<Buffer> {
  const buf = Buffer.alloc(c.size);
  expect(await store.read(c, buf, c.size, 0)).toBe(c.size);
  return buf;
}

// Whole 8 MiB blocks on a real disk: a loaded machine takes seconds, so the bound is generous (it only catches a hang).
describe("ContentStore", { timeout: 60_000 }, () => {
  const b0 = Buffer.alloc(BLOCK_SIZE, 1);
  const b1 = Buffer.from("tail of the file");

  it("zeroRange zeros a committed file's bytes: whole blocks become holes, partial ones local; a later write over a hole sees zeros", async () => {
    const b2 = Buffer.alloc(BLOCK_SIZE, 2);
    const { store, committed } = await storeOf([b0, b2, b1]);
    const c = committed();
    await store.zeroRange(c, BLOCK_SIZE - 3, 2 * BLOCK_SIZE + 5);
    expect(c.local.has(0) && c.local.has(2) && !c.local.has(1)).toBe(true);
    expect(c.hashes).toEqual([null, null, null]);
    const want = Buffer.concat([b0, b2, b1]);
    want.fill(0, BLOCK_SIZE - 3, 2 * BLOCK_SIZE + 5);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    // Past the end: nothing grows.
    await store.zeroRange(c, c.size - 2, c.size + 100);
    want.fill(0, want.length - 2);
    expect(c.size).toBe(want.length);
    // A local block made whole hole, then written in part: the rest of it reads as zeros.
    await store.write(c, Buffer.from("x"), 1, 0);
    await store.zeroRange(c, 0, BLOCK_SIZE);
    expect(c.local.has(0)).toBe(false);
    await store.write(c, Buffer.from("y"), 1, 10);
    want.fill(0, 0, BLOCK_SIZE);
    want[10] = "y".charCodeAt(0);
    expect((await readAll(store, c)).equals(want)).toBe(true);
  });

  it("reads a committed file across the block boundary", async () => {
    const { store, committed } = await storeOf([b0, b1]);
    const c = committed();
    expect(c.clean).toBe(true);
    const buf = Buffer.alloc(10);
    expect(await store.read(c, buf, 10, BLOCK_SIZE - 4)).toBe(10);
    expect(buf).toEqual(Buffer.concat([Buffer.alloc(4, 1), b1.subarray(0, 6)]));
    expect(await store.read(c, buf, 10, c.size)).toBe(0);
  });

  it("a partial write copies the block up, marks only the touched blocks changed, and keeps the rest", async () => {
    const { store, committed } = await storeOf([b0, b1]);
    const c = committed();
    await store.write(c, Buffer.from("XY"), 2, BLOCK_SIZE + 5);
    expect(c.hashes[0]).toBe(sha256(b0));
    expect(c.hashes[1]).toBeNull();
    expect(c.clean).toBe(false);
    const all = await readAll(store, c);
    expect(all.subarray(BLOCK_SIZE).toString()).toBe("tail XY the file");
    expect(all.subarray(0, BLOCK_SIZE).equals(b0)).toBe(true);
    const snap = store.snapshot(c);
    expect([...snap.pending]).toEqual([1]);
    expect((await store.snapshotBlock(c, snap, 1)).toString()).toBe("tail XY the file");
    await store.endSnapshot(c);
    await store.discard(c);
  });

  it("a write past the end grows the file with zeros between", async () => {
    const { store } = await storeOf([]);
    const c = new FileContent(0, []);
    await store.write(c, Buffer.from("end"), 3, BLOCK_SIZE + 10);
    expect(c.size).toBe(BLOCK_SIZE + 13);
    expect(c.hashes).toEqual([null, null]);
    const all = await readAll(store, c);
    expect(all.subarray(0, BLOCK_SIZE + 10).equals(Buffer.alloc(BLOCK_SIZE + 10))).toBe(true);
    expect(all.subarray(BLOCK_SIZE + 10).toString()).toBe("end");
    await store.discard(c);
  });

  it("truncate shrinks to a partial block (its hash goes) and grows with zeros", async () => {
    const { store, committed } = await storeOf([b0, b1]);
    const c = committed();
    await store.truncate(c, 100);
    expect(c.size).toBe(100);
    expect(c.hashes).toEqual([null]);
    expect((await readAll(store, c)).equals(Buffer.alloc(100, 1))).toBe(true);
    await store.truncate(c, 200);
    const grown = await readAll(store, c);
    expect(grown.subarray(0, 100).equals(Buffer.alloc(100, 1))).toBe(true);
    expect(grown.subarray(100).equals(Buffer.alloc(100))).toBe(true);
    expect(blockCount(c.size)).toBe(1);
    await store.discard(c);
  });

  it("truncate to a block boundary keeps the committed blocks before it", async () => {
    const { store, committed } = await storeOf([b0, b1]);
    const c = committed();
    await store.truncate(c, BLOCK_SIZE);
    expect(c.hashes).toEqual([sha256(b0)]);
    expect(c.clean).toBe(true);
    await store.discard(c);
  });

  it("concurrent writes to one file apply in order and each bumps the generation", async () => {
    const { store } = await storeOf([]);
    const c = new FileContent(0, []);
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.write(c, Buffer.from(String(i)), 1, i)));
    expect((await readAll(store, c)).toString()).toBe("0123456789");
    expect(c.generation).toBe(10);
    await store.discard(c);
  });
});
