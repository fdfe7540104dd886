import { mkdtempSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import { BlockCache } from "./block-cache.js";
import { mulberry32 } from "../../test/helpers/prng.js";
import { ContentStore, FileContent, HOLE, type InlineLimits, MAX_EXTENTS, blockCount, isZeros, sha256 } from "./file-content.js";

const dirs: string[] = [];
const caches: BlockCache[] = [];
afterEach(async () => {
  // The cache keeps a descriptor open per cached block: close them (not the garbage collector).
  for (const c of caches.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A content store over committed blocks held in memory (the "server"). */
async function storeOf(blocks: Buffer[], cacheBlocks = 64, inline?: InlineLimits) {
  const root = mkdtempSync(join(tmpdir(), "silo-content-"));
  dirs.push(root);
  const byHash = new Map(blocks.map((b) => [sha256(b), b]));
  const cache = new BlockCache(join(root, "cache"), cacheBlocks * BLOCK_SIZE, async (h) => {
    fetches.push(h);
    const b = byHash.get(h);
    if (!b) throw new Error(`block ${h} is not on the server`);
    return b;
  });
  const fetches: string[] = [];
  await cache.init();
  caches.push(cache);
  mkdirSync(join(root, "upper"));
  const store = new ContentStore(join(root, "upper"), cache, inline);
  const committed = () => new FileContent(blocks.reduce((n, b) => n + b.length, 0), blocks.map(sha256));
  /** Blocks the cache fetched from the "server" so far. */
  const fetched = () => fetches.length;
  /** Puts a block on the "server" (a commit's upload). */
  const upload = (b: Buffer) => byHash.set(sha256(b), Buffer.from(b));
  /** GC on the "server": only `keep` stays. */
  const collect = (keep: Set<string>) => {
    for (const h of byHash.keys()) if (!keep.has(h)) byHash.delete(h);
  };
  return { store, committed, fetched, fetches, upload, collect, upperDir: join(root, "upper") };
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

  it("view answers without a copy only from a committed, unchanged block in memory: never over written bytes", async () => {
    const b2 = Buffer.alloc(BLOCK_SIZE, 2);
    const { store, committed, fetched } = await storeOf([b0, b2, b1]);
    const c = committed();
    expect(store.view(c, 4096, 0), "not fetched yet").toBeUndefined();
    await readAll(store, c);
    expect(fetched()).toBe(3);
    expect(store.view(c, 4096, BLOCK_SIZE)?.equals(b2.subarray(0, 4096))).toBe(true);
    expect(store.view(c, 100, 2 * BLOCK_SIZE)?.equals(b1), "cut at the end of the file").toBe(true);
    expect(store.view(c, 4096, BLOCK_SIZE - 10), "across two blocks").toBeUndefined();
    // A write over block 1 makes it partial over its base, which is still in memory: no view of the base.
    await store.write(c, Buffer.from("new"), 3, BLOCK_SIZE + 100);
    expect(store.view(c, 4096, BLOCK_SIZE)).toBeUndefined();
    const buf = Buffer.alloc(4096);
    expect(await store.read(c, buf, 4096, BLOCK_SIZE)).toBe(4096);
    expect(buf.subarray(100, 103).toString()).toBe("new");
    // The base in memory was not written to.
    expect(store.view(c, 4096, 0)?.equals(b0.subarray(0, 4096))).toBe(true);
    expect(b2.every((x) => x === 2)).toBe(true);
  });

  it("zeroRange zeros a committed file's bytes: whole blocks become holes, part of one is written zeros over its base; a later write over a hole sees zeros", async () => {
    const b2 = Buffer.alloc(BLOCK_SIZE, 2);
    const { store, committed, fetched } = await storeOf([b0, b2, b1]);
    const c = committed();
    await store.zeroRange(c, BLOCK_SIZE - 3, 2 * BLOCK_SIZE + 5);
    expect(c.local.size).toBe(0);
    expect([...c.partial.keys()].sort()).toEqual([0, 2]);
    expect(fetched()).toBe(0);
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
    expect(c.local.has(0) || c.partial.has(0)).toBe(false);
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

  it("a partial write lands in place over the committed block, marks only the touched blocks changed, and keeps the rest", async () => {
    const { store, committed, fetched } = await storeOf([b0, b1]);
    const c = committed();
    await store.write(c, Buffer.from("XY"), 2, BLOCK_SIZE + 5);
    expect(fetched()).toBe(0);
    expect(c.partial.get(1)).toMatchObject({ base: sha256(b1), baseLen: b1.length });
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

/** Bytes that differ at every offset and per `seed` (an offset bug cannot read as the right bytes). */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 9)) & 255;
  return b;
}

async function readRange(store: ContentStore, c: FileContent, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const n = await store.read(c, buf, len, pos);
  return buf.subarray(0, n);
}

/** What MountedVolume's commit does with a file, minus the server: hashes and "uploads" the snapshot's blocks, then acknowledges them. */
async function commitFile(store: ContentStore, c: FileContent, upload: (b: Buffer) => void, during?: () => Promise<void>) {
  const snap = store.snapshot(c);
  const want = { size: snap.size };
  await during?.();
  const hashes = snap.hashes.map((h) => h ?? HOLE);
  const blocks = new Map<number, Buffer>();
  for (const i of [...snap.pending]) {
    const data = await store.snapshotBlock(c, snap, i);
    blocks.set(i, data);
    hashes[i] = isZeros(data) ? HOLE : sha256(data);
    await store.composed(snap, i, hashes[i]!, data);
    if (hashes[i] !== HOLE) upload(data);
  }
  store.acknowledge(c, snap, hashes);
  await store.endSnapshot(c);
  return { hashes, blocks, size: want.size };
}

describe("ContentStore: writes in place (partial blocks)", { timeout: 120_000 }, () => {
  const b0 = pattern(BLOCK_SIZE, 1);
  const b1 = pattern(BLOCK_SIZE, 2);
  const tail = pattern(100_000, 3);

  it("small writes into committed blocks fetch nothing; a read of written bytes only fetches nothing; a mixed read fetches the base once and merges", async () => {
    const { store, committed, fetched } = await storeOf([b0, b1, tail]);
    const c = committed();
    // Room for the write that grows the short tail block.
    const want = Buffer.concat([b0, b1, tail, Buffer.alloc(1000)]);
    const put = async (pos: number, data: Buffer) => {
      expect(await store.write(c, data, data.length, pos)).toBe(data.length);
      data.copy(want, pos);
    };
    await put(4096, Buffer.alloc(4096, 0xa1));
    await put(3 * 4096 + 17, Buffer.alloc(5000, 0xa2)); // unaligned
    await put(BLOCK_SIZE - 100, Buffer.alloc(300, 0xa3)); // across blocks 0 and 1
    await put(2 * BLOCK_SIZE + 99_000, Buffer.alloc(2000, 0xa4)); // grows the short tail block
    expect(fetched()).toBe(0);
    expect([...c.partial.keys()].sort()).toEqual([0, 1, 2]);
    expect(c.local.size).toBe(0);
    expect(c.partial.get(2)).toMatchObject({ baseLen: tail.length });
    expect(c.size).toBe(2 * BLOCK_SIZE + 101_000);
    // Only written bytes: served from the upper file.
    expect((await readRange(store, c, 4096, 4096)).equals(want.subarray(4096, 8192))).toBe(true);
    expect((await readRange(store, c, 2 * BLOCK_SIZE + 100_000, 1000)).equals(want.subarray(2 * BLOCK_SIZE + 100_000, 2 * BLOCK_SIZE + 101_000))).toBe(true);
    expect(fetched()).toBe(0);
    // Mixed: base, written, base, written, base in one read.
    expect((await readRange(store, c, 4000, 5 * 4096)).equals(want.subarray(4000, 4000 + 5 * 4096))).toBe(true);
    expect(fetched()).toBe(1);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    expect(fetched()).toBe(3);
  });

  it("overlapping and adjacent writes merge into one range; the last write wins where they overlap", async () => {
    const { store, committed, fetched } = await storeOf([b0]);
    const c = committed();
    const want = Buffer.from(b0);
    const writes: Array<[number, number, number]> = [
      [1000, 2000, 1],
      [1500, 3000, 2], // overlaps the end
      [500, 1200, 3], // overlaps the start
      [4000, 5000, 4],
      [3000, 4000, 5], // closes the gap exactly
    ];
    for (const [from, to, v] of writes) {
      await store.write(c, Buffer.alloc(to - from, v), to - from, from);
      want.fill(v, from, to);
    }
    expect(c.partial.get(0)!.written.toJSON()).toEqual([500, 5000]);
    expect((await readRange(store, c, 500, 4500)).equals(want.subarray(500, 5000))).toBe(true);
    expect(fetched()).toBe(0);
    expect((await readAll(store, c)).equals(want)).toBe(true);
  });

  it("a write covering a whole block needs no base; ranges that come to cover the base make the block local", async () => {
    const { store, committed, fetched } = await storeOf([b0, b1, tail]);
    const c = committed();
    await store.write(c, Buffer.alloc(BLOCK_SIZE, 9), BLOCK_SIZE, BLOCK_SIZE);
    expect(c.local.has(1) && !c.partial.has(1)).toBe(true);
    // The short tail block, in two writes.
    await store.write(c, Buffer.alloc(60_000, 8), 60_000, 2 * BLOCK_SIZE + 40_000);
    expect(c.partial.has(2)).toBe(true);
    await store.write(c, Buffer.alloc(40_000, 7), 40_000, 2 * BLOCK_SIZE);
    expect(c.local.has(2) && !c.partial.has(2)).toBe(true);
    expect(fetched()).toBe(0);
    const snap = store.snapshot(c);
    expect([...snap.pending].sort()).toEqual([1, 2]);
    expect((await store.snapshotBlock(c, snap, 2)).equals(Buffer.concat([Buffer.alloc(40_000, 7), Buffer.alloc(60_000, 8)]))).toBe(true);
    await store.endSnapshot(c);
    expect(fetched()).toBe(0);
  });

  it("truncate across written ranges: the cut block keeps its base below the cut, and neither base nor written bytes past the cut come back when the file grows", async () => {
    const { store, committed, fetched } = await storeOf([b0, b1]);
    const c = committed();
    await store.write(c, Buffer.alloc(100, 1), 100, 1000);
    await store.write(c, Buffer.alloc(100, 2), 100, 3000);
    await store.write(c, Buffer.alloc(100, 3), 100, BLOCK_SIZE + 10);
    await store.truncate(c, 3050); // inside the second range of block 0
    expect(c.partial.has(1)).toBe(false);
    expect(c.partial.get(0)).toMatchObject({ baseLen: 3050 });
    expect(c.partial.get(0)!.written.toJSON()).toEqual([1000, 1100, 3000, 3050]);
    await store.truncate(c, BLOCK_SIZE + 500);
    const want = Buffer.alloc(BLOCK_SIZE + 500);
    b0.copy(want, 0, 0, 3050);
    want.fill(1, 1000, 1100);
    want.fill(2, 3000, 3050);
    expect(fetched()).toBe(0);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    // A write past the end over the regrown part: zeros stay zeros around it.
    await store.write(c, Buffer.alloc(10, 4), 10, 5000);
    want.fill(4, 5000, 5010);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    // Cut below every range: the base alone, shorter.
    await store.truncate(c, 500);
    expect(c.partial.get(0)).toMatchObject({ baseLen: 500 });
    expect(c.partial.get(0)!.written.empty).toBe(true);
    expect((await readAll(store, c)).equals(b0.subarray(0, 500))).toBe(true);
    // Cut to nothing of the base: a local block of zeros.
    await store.truncate(c, 0);
    await store.truncate(c, 10);
    expect((await readAll(store, c)).equals(Buffer.alloc(10))).toBe(true);
  });

  it("a commit composes base + written ranges while writers go on (copy-on-write of the ranges), then moves the block onto its new committed bytes", async () => {
    const { store, committed, fetched, upload, collect } = await storeOf([b0, b1], 2);
    const c = committed();
    await store.write(c, Buffer.alloc(10, 1), 10, 100);
    await store.write(c, Buffer.alloc(10, 2), 10, 300);
    const atSnapshot = Buffer.concat([b0, b1]);
    atSnapshot.fill(1, 100, 110);
    atSnapshot.fill(2, 300, 310);
    const now = Buffer.from(atSnapshot);
    const r = await commitFile(store, c, upload, async () => {
      // Over a written range and beside it, and into the clean block 1.
      await store.write(c, Buffer.alloc(50, 3), 50, 90);
      await store.write(c, Buffer.alloc(5, 4), 5, BLOCK_SIZE + 5);
      now.fill(3, 90, 140);
      now.fill(4, BLOCK_SIZE + 5, BLOCK_SIZE + 10);
    });
    expect(r.blocks.get(0)!.equals(atSnapshot.subarray(0, BLOCK_SIZE))).toBe(true);
    expect(r.hashes[1]).toBe(sha256(b1));
    // Block 0 changed since the snapshot: still to commit, but over the new base.
    expect(c.hashes[0]).toBeNull();
    expect(c.partial.get(0)!.base).toBe(r.hashes[0]);
    expect(c.partial.get(1)!.base).toBe(sha256(b1));
    // GC drops what no version names any more: the old base of block 0.
    collect(new Set(r.hashes));
    const before = fetched();
    expect((await readAll(store, c)).equals(now)).toBe(true);
    expect(fetched()).toBeGreaterThan(before);
    const r2 = await commitFile(store, c, upload);
    expect(r2.blocks.get(0)!.equals(now.subarray(0, BLOCK_SIZE))).toBe(true);
    expect(r2.blocks.get(1)!.equals(now.subarray(BLOCK_SIZE))).toBe(true);
    expect(c.clean).toBe(true);
    expect(c.partial.get(0)!.base).toBe(c.hashes[0]);
  });

  it("a partial block that was being read keeps reading without a fetch after its commit (the new block goes into the cache)", async () => {
    const { store, committed, fetched, upload } = await storeOf([b0, b1]);
    const c = committed();
    const want = Buffer.concat([b0, b1]);
    await store.write(c, Buffer.alloc(10, 1), 10, 100);
    await store.write(c, Buffer.alloc(10, 2), 10, BLOCK_SIZE + 100);
    want.fill(1, 100, 110);
    want.fill(2, BLOCK_SIZE + 100, BLOCK_SIZE + 110);
    // Block 0's unwritten bytes are read (its base is cached); block 1's are not.
    expect((await readRange(store, c, 0, 200)).equals(want.subarray(0, 200))).toBe(true);
    expect(fetched()).toBe(1);
    const r = await commitFile(store, c, upload);
    // The commit read block 1's base past the cache.
    expect(fetched()).toBe(2);
    expect(c.partial.get(0)!.base).toBe(r.hashes[0]);
    expect((await readRange(store, c, 0, 200)).equals(want.subarray(0, 200))).toBe(true);
    expect(fetched()).toBe(2);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    // Block 1 now reads over its new block: fetched once.
    expect(fetched()).toBe(3);
  });

  it(`a block written in more than ${MAX_EXTENTS} pieces gets its base copied in once and becomes local`, async () => {
    const { store, committed, fetched } = await storeOf([b0]);
    const c = committed();
    const want = Buffer.from(b0);
    for (let k = 0; k <= MAX_EXTENTS; k++) {
      const pos = k * 8192;
      await store.write(c, Buffer.alloc(100, k & 255), 100, pos);
      want.fill(k & 255, pos, pos + 100);
    }
    expect(c.local.has(0) && !c.partial.has(0)).toBe(true);
    expect(fetched()).toBe(1);
    expect((await readAll(store, c)).equals(want)).toBe(true);
  });

  it("a small write into a file held open (its upper file open, nothing queued) lands synchronously over the committed base; a block so written in too many pieces still gets its base", async () => {
    const b2 = Buffer.alloc(BLOCK_SIZE, 2);
    const { store, committed, fetched } = await storeOf([b0, b2, b1]);
    const c = committed();
    // As MountedVolume.openHandle: the upper file stays open while a handle is.
    c.openHandles = 1;
    const want = Buffer.concat([b0, b2, b1]);
    await store.write(c, Buffer.from("first"), 5, 0);
    want.write("first", 0);
    const n = store.write(c, Buffer.from("sync"), 4, BLOCK_SIZE + 10);
    expect(n, "answered without a promise").toBe(4);
    want.write("sync", BLOCK_SIZE + 10);
    expect(c.partial.has(1) && c.hashes[1] === null).toBe(true);
    for (let k = 0; k <= MAX_EXTENTS; k++) {
      const pos = BLOCK_SIZE + 8192 * (k + 1);
      await store.write(c, Buffer.alloc(100, k & 255), 100, pos);
      want.fill(k & 255, pos, pos + 100);
    }
    expect(c.local.has(1) && !c.partial.has(1)).toBe(true);
    expect(fetched()).toBe(1);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    await store.closeUpper(c);
  });

  it("random writes, truncates, zeroed ranges, reads and commits (some with writes during them) agree with a reference buffer", async () => {
    const seed = Date.now() % 100_000;
    const random = mulberry32(seed);
    const { store, committed, upload, collect } = await storeOf([b0, b1, tail], 3);
    const c = committed();
    let want = Buffer.concat([b0, b1, tail]);
    const LIMIT = 3 * BLOCK_SIZE + BLOCK_SIZE / 2;
    const int = (n: number) => Math.floor(random() * n);
    const resize = (size: number) => {
      const next = Buffer.alloc(size);
      want.copy(next, 0, 0, Math.min(size, want.length));
      want = next;
    };
    const step = async (label: string): Promise<void> => {
      const r = random();
      if (r < 0.55) {
        const len = random() < 0.1 ? BLOCK_SIZE + int(5000) : 1 + int(random() < 0.5 ? 4096 : 40_000);
        const pos = Math.min(int(want.length + 20_000), LIMIT - len);
        const data = pattern(len, int(1000));
        await store.write(c, data, len, pos);
        if (pos + len > want.length) resize(pos + len);
        data.copy(want, pos);
      } else if (r < 0.75) {
        const pos = int(want.length + 1);
        const len = int(50_000);
        const got = await readRange(store, c, pos, len);
        expect(got.equals(want.subarray(pos, pos + len)), `${label}: read ${len} at ${pos}`).toBe(true);
      } else if (r < 0.85) {
        const size = random() < 0.5 ? Math.max(0, want.length - int(100_000)) : int(LIMIT);
        await store.truncate(c, size);
        resize(size);
      } else {
        const from = int(want.length + 1);
        const to = from + (random() < 0.2 ? BLOCK_SIZE + int(100) : int(30_000));
        await store.zeroRange(c, from, to);
        want.fill(0, from, Math.min(to, want.length));
      }
    };
    for (let op = 0; op < 120; op++) {
      const label = `seed ${seed}, op ${op}`;
      if (random() < 0.08) {
        const atSnapshot = Buffer.from(want);
        const r = await commitFile(store, c, upload, async () => {
          for (let k = int(3); k > 0; k--) await step(`${label} (during a commit)`);
        });
        for (const [i, data] of r.blocks) {
          expect(data.equals(atSnapshot.subarray(i * BLOCK_SIZE, Math.min(r.size, (i + 1) * BLOCK_SIZE))), `${label}: snapshot block ${i}`).toBe(true);
        }
        // Every base the file still reads is in the version just committed; GC may drop the rest.
        const kept = new Set(r.hashes);
        for (const [i, p] of c.partial) expect(kept.has(p.base), `${label}: base of block ${i}`).toBe(true);
        collect(kept);
      } else await step(label);
    }
    expect(c.size).toBe(want.length);
    expect((await readAll(store, c)).equals(want), `seed ${seed}: whole file`).toBe(true);
  });
});

describe("ContentStore: small files inline (no upper file)", { timeout: 60_000 }, () => {
  const limits = { maxFile: 8192, budget: 1 << 20 };

  it("a small new file's bytes stay in memory; a commit snapshot keeps its bytes while writes go on; outgrowing the limit moves them into an upper file", async () => {
    const { store, upperDir } = await storeOf([], 64, limits);
    const c = new FileContent(0, []);
    await store.write(c, Buffer.from("hello, world"), 12, 0);
    expect(c.inline?.toString()).toBe("hello, world");
    expect(c.upperPath).toBe(null);
    expect(readdirSync(upperDir)).toEqual([]);
    expect((await readAll(store, c)).toString()).toBe("hello, world");
    // A write past the end leaves zeros between.
    await store.write(c, Buffer.from("!"), 1, 20);
    expect((await readAll(store, c)).equals(Buffer.concat([Buffer.from("hello, world"), Buffer.alloc(8), Buffer.from("!")]))).toBe(true);

    const snap = store.snapshot(c);
    expect([...snap.pending]).toEqual([0]);
    const atSnapshot = await readAll(store, c);
    await store.write(c, Buffer.from("HELLO"), 5, 0);
    await store.truncate(c, 30);
    expect((await store.snapshotBlock(c, snap, 0)).equals(atSnapshot)).toBe(true);
    const hash = sha256(atSnapshot);
    store.acknowledge(c, snap, [hash]);
    await store.endSnapshot(c);
    // Changed since the snapshot: the acknowledged hash does not describe it.
    expect(c.hashes).toEqual([null]);

    // Past maxFile: the bytes move into an upper file (block 0 local), also during a commit.
    const snap2 = store.snapshot(c);
    const before = await readAll(store, c);
    const big = pattern(9000, 5);
    await store.write(c, big, big.length, 100);
    expect(c.inline).toBe(null);
    expect(c.upperPath).not.toBe(null);
    expect(c.local.has(0)).toBe(true);
    expect(readdirSync(upperDir).length).toBe(1);
    expect((await store.snapshotBlock(c, snap2, 0)).equals(before)).toBe(true);
    await store.endSnapshot(c);
    const want = Buffer.alloc(9100);
    before.copy(want);
    big.copy(want, 100);
    expect((await readAll(store, c)).equals(want)).toBe(true);
    expect(store.inlineHeld).toBe(0);
  });

  it("a write that outgrows the limit over the inline bytes keeps the new bytes, not the old ones", async () => {
    const { store } = await storeOf([], 64, limits);
    const c = new FileContent(0, []);
    await store.write(c, Buffer.from("old bytes"), 9, 0);
    expect(c.inline).not.toBe(null);
    const big = pattern(9000, 7);
    await store.write(c, big, big.length, 2);
    expect(c.inline).toBe(null);
    const want = Buffer.concat([Buffer.from("ol"), big]);
    expect((await readAll(store, c)).equals(want)).toBe(true);
  });

  it("files become inline only while the budget lasts; truncating to nothing and discarding give it back", async () => {
    const { store } = await storeOf([], 64, { maxFile: 8192, budget: 3000 });
    const a = new FileContent(0, []);
    const b = new FileContent(0, []);
    await store.write(a, pattern(2000, 1), 2000, 0);
    await store.write(b, pattern(2000, 2), 2000, 0);
    expect(a.inline).not.toBe(null);
    expect(b.inline).toBe(null);
    expect(b.local.has(0)).toBe(true);
    expect((await readAll(store, b)).equals(pattern(2000, 2))).toBe(true);
    // Growing within maxFile but past the budget: into an upper file.
    await store.truncate(a, 5000);
    expect(a.inline).toBe(null);
    expect((await readAll(store, a)).equals(Buffer.concat([pattern(2000, 1), Buffer.alloc(3000)]))).toBe(true);
    expect(store.inlineHeld).toBe(0);
    const d = new FileContent(0, []);
    await store.write(d, pattern(100, 3), 100, 0);
    expect(d.inline).not.toBe(null);
    await store.truncate(d, 0);
    expect([d.inline, d.size, d.hashes.length]).toEqual([null, 0, 0]);
    await store.write(d, pattern(10, 4), 10, 0);
    expect(d.inline?.length).toBe(10);
    await store.discard(d);
    expect(store.inlineHeld).toBe(0);
  });

  it("random writes, truncates, zeroed ranges and commits across the inline limit agree with a reference buffer", async () => {
    const seed = Date.now() % 100_000;
    const random = mulberry32(seed);
    const int = (n: number) => Math.floor(random() * n);
    for (let round = 0; round < 8; round++) {
      const { store } = await storeOf([], 64, limits);
      const c = new FileContent(0, []);
      let want = Buffer.alloc(0);
      const resize = (size: number) => {
        const next = Buffer.alloc(size);
        want.copy(next, 0, 0, Math.min(size, want.length));
        want = next;
      };
      const step = async (label: string): Promise<void> => {
        const r = random();
        if (r < 0.55) {
          const len = 1 + int(random() < 0.8 ? 600 : 3000);
          const pos = int(want.length + 500);
          const data = pattern(len, int(1000));
          await store.write(c, data, len, pos);
          if (pos + len > want.length) resize(pos + len);
          data.copy(want, pos);
        } else if (r < 0.75) {
          const pos = int(want.length + 1);
          const len = int(3000);
          const got = await readRange(store, c, pos, len);
          expect(got.equals(want.subarray(pos, pos + len)), `${label}: read ${len} at ${pos}`).toBe(true);
        } else if (r < 0.9) {
          const size = random() < 0.3 ? 0 : int(10_000);
          await store.truncate(c, size);
          resize(size);
        } else {
          const from = int(want.length + 1);
          const to = from + int(2000);
          await store.zeroRange(c, from, to);
          want.fill(0, from, Math.min(to, want.length));
        }
      };
      for (let op = 0; op < 60; op++) {
        const label = `seed ${seed}, round ${round}, op ${op}`;
        if (random() < 0.15) {
          const atSnapshot = Buffer.from(want);
          const r = await commitFile(store, c, () => {}, async () => {
            for (let k = int(3); k > 0; k--) await step(`${label} (during a commit)`);
          });
          for (const [i, data] of r.blocks) expect(data.equals(atSnapshot.subarray(i * BLOCK_SIZE, Math.min(r.size, (i + 1) * BLOCK_SIZE))), `${label}: snapshot block ${i}`).toBe(true);
        } else await step(label);
        expect(c.size, label).toBe(want.length);
        if (c.inline) expect(c.inline.equals(want), `${label}: inline bytes`).toBe(true);
      }
      expect((await readAll(store, c)).equals(want), `seed ${seed}, round ${round}: whole file`).toBe(true);
    }
  });
});
