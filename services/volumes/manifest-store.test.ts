import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { Change } from "../../protocol/volume.js";
import { openSqlite } from "../db.js";
import { VOLUME_LIMITS } from "../../protocol/volume.js";
import type { VolumeLimits } from "./commit.js";
import type { ManifestStore } from "./manifest-store.js";
import { SqliteManifestStore } from "./sqlite-manifest-store.js";

/**
 * The ManifestStore contract, run in-process against every engine: a new engine (e.g. PostgreSQL)
 * adds its factory here and must pass the same cases.
 */
const dirs: string[] = [];
const ENGINES: Array<[string, () => ManifestStore]> = [
  [
    "sqlite",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "silo-store-"));
      dirs.push(dir);
      return new SqliteManifestStore(new Database(join(dir, "volumes.sqlite")));
    },
  ],
];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const limits: VolumeLimits = { inodeLimit: 100, maxDirEntries: VOLUME_LIMITS.maxDirEntries, maxFileBytes: VOLUME_LIMITS.maxFileBytes };
const h = (c: string) => c.repeat(64);
const file = (path: string, hash: string, size = 10): Change => ({ op: "put", entry: { path, type: "file", mode: 0o644, size, mtimeMs: 1, blocks: [hash] } });
const meta = (now: number, tokenId = "tok-a") => ({ now, tokenId });

describe.each(ENGINES)("ManifestStore contract: %s", (_name, make) => {
  async function setup() {
    const store = make();
    await store.state("vo-a", "ws-1", 0);
    await store.storeInline("ws-1", [{ hash: h("a"), data: Buffer.alloc(10, 1) }, { hash: h("b"), data: Buffer.alloc(10, 2) }], 0);
    return store;
  }

  it("commits atomically, counts block references, and reads every retained version", async () => {
    const store = await setup();
    expect(await store.commit("vo-a", [file("d/x", h("a")), file("y", h("b"))], limits, "replace", meta(10))).toBe(1);
    expect(await store.commit("vo-a", [file("d/x", h("b")), { op: "delete", path: "y" }], limits, "replace", meta(20, "tok-b"))).toBe(2);
    // A bad change fails the whole commit: nothing of it is applied.
    await expect(store.commit("vo-a", [file("z", h("a")), file("w", h("c"))], limits, "replace", meta(30))).rejects.toThrow(/not been uploaded/);
    await expect(store.commit("vo-a", [file("z", h("a"), 11)], limits, "replace", meta(30))).rejects.toThrow(/holds 10/);
    expect((await store.checkVersion("vo-a"))).toBe(2);
    expect((await store.tree("vo-a", 1, "", 10)).entries.map((e) => e.path)).toEqual(["d", "d/x", "y"]);
    expect((await store.lookup("vo-a", undefined, "d/x")).entry?.blocks).toEqual([h("b")]);
    expect((await store.delta("vo-a", 1, 2)).changes).toEqual([
      { op: "delete", path: "y" },
      { op: "put", entry: { path: "d/x", type: "file", mode: 0o644, size: 10, mtimeMs: 1, blocks: [h("b")] } },
    ]);
    const history = await store.history("vo-a", { limit: 10, sample: 5 });
    expect(history.versions.map((v) => [v.version, v.tokenId])).toEqual([[2, "tok-b"], [1, "tok-a"], [0, undefined]]);
    // Nothing unreferenced yet but nothing else either: a is referenced by version 1's row.
    expect(await store.collectableBlocks("ws-1", 100, 10)).toEqual([]);
  });

  it("lists a directory at an older version in path order and in pages: names added later are not there, names removed later are", async () => {
    const store = await setup();
    await store.commit("vo-a", ["d/c", "d/a", "d/e", "x"].map((p) => file(p, h("a"))), limits, "replace", meta(10));
    await store.commit("vo-a", [file("d/b", h("b")), { op: "delete", path: "d/e" }, file("d/a", h("b"))], limits, "replace", meta(20));
    const names = async (version: number, limit: number) => {
      const out: string[] = [];
      let after = "";
      for (;;) {
        const page = await store.list("vo-a", version, "d", false, after, limit);
        out.push(...page.entries.map((e) => `${e.path}:${e.blocks?.[0] === h("a") ? "a" : "b"}`));
        if (!page.next) return out;
        after = page.next;
      }
    };
    expect(await names(1, 2)).toEqual(["d/a:a", "d/c:a", "d/e:a"]);
    expect(await names(2, 2)).toEqual(["d/a:b", "d/b:b", "d/c:a"]);
    expect(await names(1, 10)).toEqual(await names(1, 1));
  });

  it("restore changes what differs; fork shares blocks; GC steps drop what no retained version sees", async () => {
    const store = await setup();
    await store.commit("vo-a", [file("x", h("a"))], limits, "replace", meta(10));
    await store.commit("vo-a", [file("x", h("b")), file("new", h("b"))], limits, "replace", meta(20));
    const revert = await store.revertChanges("vo-a", 1, "");
    expect(revert).toEqual([{ op: "delete", path: "new" }, { op: "put", entry: expect.objectContaining({ path: "x", blocks: [h("a")] }) }]);
    expect(await store.revertChanges("vo-a", 1, "x")).toHaveLength(1);

    await store.state("vo-b", "ws-1", 0);
    const forked = await store.fork("vo-a", 1, "vo-b", "ws-1", { now: 30, note: "fork" });
    expect(forked).toMatchObject({ latest: 1, inodes: 1 });
    expect((await store.tree("vo-b", undefined, "", 10)).entries.map((e) => e.blocks)).toEqual([[h("a")]]);
    await expect(store.fork("vo-a", 1, "vo-b", "ws-1", { now: 30 })).rejects.toThrow(/new, empty/);

    // Retain only the latest of vo-a: its version-1 row goes, but the fork still references block a.
    expect(await store.expireVersions("vo-a", 1000, 1000)).toBe(2);
    expect(await store.dropExpiredRows("vo-a", 100)).toBe(1);
    await expect(store.lookup("vo-a", 1, "x")).rejects.toThrow(/no longer retained/);
    expect(await store.collectableBlocks("ws-1", 1000, 10)).toEqual([]);
    // The fork goes: block a has no reference left.
    while ((await store.purgeRows("vo-b", 1)) > 0);
    expect(await store.collectableBlocks("ws-1", 1000, 10)).toEqual([h("a")]);
    expect(await store.forgetBlocks("ws-1", [h("a")], 1000)).toEqual(["inline"]);
    expect(await store.blockSize("ws-1", h("a"))).toBeUndefined();
  });

  it("pins hold versions against expiry until they lapse; a pin on a dropped version is refused", async () => {
    const store = await setup();
    await store.commit("vo-a", [file("x", h("a"))], limits, "replace", meta(10));
    const pin = await store.pin("vo-a", "pin-1", 1, 100, 50);
    await store.commit("vo-a", [file("x", h("b"))], limits, "replace", meta(60));
    expect(await store.expireVersions("vo-a", 1000, 100)).toBe(1);
    expect((await store.renewPin("vo-a", pin.pinId, undefined, 100, 120)).expiresAt).toBe(220);
    // Lapsed: forgotten, and the versions it held go.
    expect(await store.expireVersions("vo-a", 1000, 300)).toBe(2);
    await expect(store.renewPin("vo-a", pin.pinId, undefined, 100, 300)).rejects.toThrow(/lapsed/);
    await expect(store.pin("vo-a", "pin-2", 1, 100, 300)).rejects.toThrow(/no longer retained/);
  });
});

describe("SqliteManifestStore block records", () => {
  it("records blocks uploaded together in one fsync'd transaction, each answered once it is on disk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "silo-store-"));
    dirs.push(dir);
    const file = join(dir, "volumes.sqlite");
    const store = new SqliteManifestStore(openSqlite(file));
    await store.recordBlock("ws-1", h("0"), 1, 0);
    const walBefore = statSync(`${file}-wal`).size;
    const hashes = Array.from({ length: 64 }, (_, i) => i.toString(16).padStart(64, "f"));
    await Promise.all(hashes.map((hash, i) => store.recordBlock("ws-1", hash, i + 1, 10)));
    // Each transaction appends the pages it changed to the WAL (4 KiB + a 24-byte header each):
    // 64 transactions would append at least 64 frames (each its table and index pages), one
    // group the few pages 64 rows fill (8 here).
    expect((statSync(`${file}-wal`).size - walBefore) / 4120).toBeLessThan(32);
    // Visible (and durable) to a reader once answered.
    const reader = new Database(file, { readonly: true });
    try {
      expect(reader.prepare("SELECT count(*) FROM blocks WHERE workspace = 'ws-1'").pluck().get()).toBe(65);
    } finally {
      reader.close();
    }
    expect(await store.blockSize("ws-1", hashes[63]!)).toBe(64);
  });
});
