import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import { BlockCache } from "./block-cache.js";
import { ContentStore, FileContent, zeroHash } from "./file-content.js";
import { MAX_FILE_SIZE } from "./limits.js";

const dir = mkdtempSync(join(tmpdir(), "silo-content-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A store whose cache must never be asked: these files have no committed blocks. */
function store(): ContentStore {
  const cache = new BlockCache(join(dir, `cache-${Math.random()}`), 1 << 20, async () => {
    throw new Error("no committed blocks here");
  });
  return new ContentStore(dir, cache);
}

const read = async (s: ContentStore, c: FileContent, pos: number, len: number) => {
  const buf = Buffer.alloc(len);
  const n = await s.read(c, buf, len, pos);
  return buf.subarray(0, n);
};

describe("ContentStore: snapshots, holes, limits", () => {
  it("a commit snapshot keeps the bytes of the instant it was taken while writers go on", async () => {
    const s = store();
    const c = new FileContent(0, []);
    await s.write(c, Buffer.alloc(100, 1), 100, 0);
    const snap = s.snapshot(c);
    const reads = [...snap.pending];
    // After the snapshot: overwrite, append, then shrink.
    await s.write(c, Buffer.alloc(50, 2), 50, 25);
    await s.write(c, Buffer.alloc(BLOCK_SIZE, 3), BLOCK_SIZE, 100);
    await s.truncate(c, 10);
    expect(reads).toEqual([0]);
    const block = await s.snapshotBlock(c, snap, 0);
    expect(block.equals(Buffer.alloc(100, 1))).toBe(true);
    expect(snap.changed.has(0)).toBe(true);
    await s.endSnapshot(c);
    expect((await read(s, c, 0, 100)).equals(Buffer.alloc(10, 1))).toBe(true);
  });

  it("holes are neither stored nor read: a 1 TiB - 1 file costs a hash list, not bytes", async () => {
    const s = store();
    const c = new FileContent(0, []);
    await s.truncate(c, MAX_FILE_SIZE);
    expect(c.size).toBe(MAX_FILE_SIZE);
    expect(c.local.size).toBe(0);
    await s.write(c, Buffer.alloc(10, 9), 10, 2 ** 39);
    expect([...c.local]).toEqual([2 ** 39 / BLOCK_SIZE]);
    expect((await read(s, c, 2 ** 39 - 5, 20)).equals(Buffer.concat([Buffer.alloc(5), Buffer.alloc(10, 9), Buffer.alloc(5)]))).toBe(true);
    const snap = s.snapshot(c);
    expect([...snap.pending]).toEqual([2 ** 39 / BLOCK_SIZE]);
    await s.endSnapshot(c);
    // A hole's committed form is the zero block of its length.
    expect(zeroHash(BLOCK_SIZE)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses sizes no file may have", async () => {
    const s = store();
    const c = new FileContent(0, []);
    await expect(s.truncate(c, MAX_FILE_SIZE + 1)).rejects.toMatchObject({ code: "EFBIG" });
    await expect(s.truncate(c, -1)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(s.write(c, Buffer.alloc(2), 2, MAX_FILE_SIZE)).rejects.toMatchObject({ code: "EFBIG" });
    expect(await s.write(c, Buffer.alloc(4), 4, MAX_FILE_SIZE - 2)).toBe(2);
  });
});
