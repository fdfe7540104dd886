/**
 * The local blob store's group writes (local block writes): staged blobs written with O_DIRECT
 * from page-aligned memory where the file system takes it (the rest through the page cache), and
 * a group's syncs issued at once. Whatever the path, a published blob's bytes are the staged
 * ones and hash to its name; a failed sync publishes nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fuseFdAddon } from "../../lib/native-addon.js";
import { DIRECT_ALIGN, LocalBlobStore, type SyncAll } from "./local.js";

const addon = fuseFdAddon();
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function store(syncAll?: SyncAll | null): { blobs: LocalBlobStore; root: string } {
  const root = mkdtempSync(join(tmpdir(), "silo-local-blobs-"));
  roots.push(root);
  return { blobs: new LocalBlobStore(root, syncAll === null ? undefined : syncAll), root };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** `data` copied into page-aligned memory (the addon's), as local-put-server's pooled buffers. */
function aligned(data: Buffer): Buffer {
  const mem = addon.alignedBuffer!(Math.max(data.length, 1));
  data.copy(mem);
  return mem.subarray(0, data.length);
}

/** Names of the files under the store's root whose names start with `.tmp-` (staged, never published). */
const temps = (root: string) => readdirSync(root, { recursive: true }).filter((f) => String(f).split("/").pop()!.startsWith(".tmp-"));

describe("LocalBlobStore group writes", () => {
  it("writes the whole pages of aligned memory with O_DIRECT and the rest buffered; every blob reads back as staged and hashes to its name", async () => {
    const { blobs, root } = store();
    const cases = [2 * DIRECT_ALIGN, 3 * DIRECT_ALIGN + 100, DIRECT_ALIGN - 1, 1];
    const datas = cases.map((n) => aligned(randomBytes(n)));
    const staged = [];
    for (const d of datas) staged.push(await blobs.group!.stage("ns", sha256(d), d, true));
    expect(staged.map((b) => b.directBytes)).toEqual([2 * DIRECT_ALIGN, 3 * DIRECT_ALIGN, 0, 0]);
    await blobs.group!.publish(staged);
    for (const d of datas) {
      const file = join(root, "ns", sha256(d).slice(0, 2), sha256(d));
      const back = readFileSync(file);
      expect(back.equals(d)).toBe(true);
      expect(sha256(back)).toBe(sha256(d));
    }
    expect(temps(root)).toEqual([]);
  });

  it("memory not said to be aligned is written through the page cache", async () => {
    const { blobs, root } = store();
    const d = aligned(randomBytes(2 * DIRECT_ALIGN));
    const b = await blobs.group!.stage("ns", sha256(d), d);
    expect(b.directBytes).toBe(0);
    await blobs.group!.publish([b]);
    expect(readFileSync(join(root, "ns", sha256(d).slice(0, 2), sha256(d))).equals(d)).toBe(true);
  });

  it("a write O_DIRECT refuses (EINVAL) is made through the page cache, whole, and later blobs skip O_DIRECT", async () => {
    const { blobs, root } = store();
    // Claims page alignment but is one byte off: the kernel refuses the O_DIRECT write.
    const off = Buffer.allocUnsafeSlow(2 * DIRECT_ALIGN + 1).subarray(1);
    randomBytes(off.length).copy(off);
    const first = await blobs.group!.stage("ns", sha256(off), off, true);
    expect(first.directBytes).toBe(0);
    const good = aligned(randomBytes(2 * DIRECT_ALIGN));
    const second = await blobs.group!.stage("ns", sha256(good), good, true);
    expect(second.directBytes, "O_DIRECT is off once refused").toBe(0);
    await blobs.group!.publish([first, second]);
    for (const d of [off, good]) expect(readFileSync(join(root, "ns", sha256(d).slice(0, 2), sha256(d))).equals(d)).toBe(true);
  });

  it("issues a group's fdatasyncs together and then its directories' fsyncs together; without syncAll, one by one", async () => {
    const calls: Array<{ n: number; dataOnly: boolean }> = [];
    const counting: SyncAll = (fds, dataOnly) => {
      calls.push({ n: fds.length, dataOnly });
      return addon.syncAll!(fds, dataOnly);
    };
    let prefixes = 0;
    for (const syncAll of [counting, null]) {
      const { blobs, root } = store(syncAll);
      const datas = [0, 1, 2].map(() => aligned(randomBytes(DIRECT_ALIGN)));
      if (syncAll) prefixes = new Set(datas.map((d) => sha256(d).slice(0, 2))).size;
      const staged = await Promise.all(datas.map((d) => blobs.group!.stage("ns", sha256(d), d, true)));
      await blobs.group!.publish(staged);
      for (const d of datas) expect(readFileSync(join(root, "ns", sha256(d).slice(0, 2), sha256(d))).equals(d)).toBe(true);
    }
    // The files' fdatasyncs in one call, then one fsync per distinct prefix directory in another; none without syncAll.
    expect(calls).toEqual([
      { n: 3, dataOnly: true },
      { n: prefixes, dataOnly: false },
    ]);
  });

  it("a failed sync publishes nothing and leaves no temp file", async () => {
    const failing: SyncAll = async (fds, dataOnly) => {
      await addon.syncAll!(fds, dataOnly);
      throw Object.assign(new Error("syncAll: Input/output error"), { code: "EIO" });
    };
    const { blobs, root } = store(failing);
    const datas = [aligned(randomBytes(DIRECT_ALIGN)), aligned(randomBytes(DIRECT_ALIGN))];
    const staged = await Promise.all(datas.map((d) => blobs.group!.stage("ns", sha256(d), d, true)));
    await expect(blobs.group!.publish(staged)).rejects.toMatchObject({ code: "EIO" });
    for (const d of datas) expect(await blobs.has("ns", sha256(d))).toBe(false);
    expect(temps(root)).toEqual([]);
  });
});
