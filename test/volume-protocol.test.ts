import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, type Change, InvalidError, type ManifestEntry, NotFoundError, RangeNotSatisfiableError, TooLargeError, type Volume } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { allPaths, bytes, readAll, sha256 } from "./helpers/volume-data.js";

const fx = siloServerFixture();

const file = (path: string, blocks: string[] = [], size = 0): Change => ({
  op: "put",
  entry: { path, type: "file", mode: 0o644, size, mtimeMs: 1000, blocks },
});
const dir = (path: string): Change => ({ op: "put", entry: { path, type: "directory", mode: 0o755, size: 0, mtimeMs: 1000 } });

async function fresh(name: string): Promise<Volume> {
  return fx.server.client().volumes.fromName(name, { createIfMissing: true });
}

/** What a mount does: apply a delta to a tree it holds. */
function apply(tree: Map<string, ManifestEntry>, changes: Change[]): void {
  for (const c of changes) {
    if (c.op === "delete") {
      for (const p of [...tree.keys()]) if (p === c.path || p.startsWith(`${c.path}/`)) tree.delete(p);
    } else {
      const old = tree.get(c.entry.path);
      if (old?.type === "directory" && c.entry.type !== "directory") {
        for (const p of [...tree.keys()]) if (p.startsWith(`${c.entry.path}/`)) tree.delete(p);
      }
      tree.set(c.entry.path, c.entry);
    }
  }
}

async function fullTree(vol: Volume, version: number): Promise<Map<string, ManifestEntry>> {
  const map = new Map<string, ManifestEntry>();
  let after: string | undefined;
  do {
    const page = await vol.blocks.tree(version, { after, limit: 2 });
    for (const e of page.entries) map.set(e.path, e);
    after = page.next;
  } while (after !== undefined);
  return map;
}

describe("blocks", () => {
  it("missingBlocks, uploadBlock (hash verified), readBlock with ranges", async () => {
    await using vol = await fresh("blk-1");
    const data = bytes(100_000);
    const hash = sha256(data);
    expect(await vol.blocks.missingBlocks([hash])).toEqual([hash]);
    await expect(vol.blocks.uploadBlock(hash, bytes(100))).rejects.toBeInstanceOf(InvalidError);
    expect(await vol.blocks.missingBlocks([hash])).toEqual([hash]);
    await vol.blocks.uploadBlock(hash, data);
    expect(await vol.blocks.missingBlocks([hash])).toEqual([]);
    expect((await vol.blocks.readBlock(hash)).equals(data)).toBe(true);
    expect((await vol.blocks.readBlock(hash, { start: 10, end: 20 })).equals(data.subarray(10, 20))).toBe(true);
    expect((await vol.blocks.readBlock(hash, { start: 99_990, end: 200_000 })).equals(data.subarray(99_990))).toBe(true);
    await expect(vol.blocks.readBlock("f".repeat(64))).rejects.toBeInstanceOf(NotFoundError);
    const tooBig = bytes(BLOCK_SIZE + 1);
    await expect(vol.blocks.uploadBlock(sha256(tooBig), tooBig)).rejects.toBeInstanceOf(TooLargeError);
  });

  it("a Range that starts at or past the end answers 416 RANGE_NOT_SATISFIABLE with the size; reading there yields nothing", async () => {
    await using vol = await fresh("range-416");
    const data = bytes(1000);
    await vol.batchUpload().putFile(data, "f.bin").commit();
    const hash = sha256(data);
    const auth = { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}` };
    const fileUrl = `${fx.server.url}/v1/volumes/${vol.id}/file?path=f.bin`;
    for (const url of [fileUrl, `${fx.server.url}/v1/volumes/${vol.id}/blocks/${hash}`]) {
      for (const range of ["bytes=1000-", "bytes=5000-6000", "bytes=-0"]) {
        const res = await fetch(url, { headers: { ...auth, range } });
        expect(res.status, `${url} ${range}`).toBe(416);
        expect(res.headers.get("content-range")).toBe("bytes */1000");
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("RANGE_NOT_SATISFIABLE");
      }
      const ok = await fetch(url, { headers: { ...auth, range: "bytes=990-5000" } });
      expect(ok.status).toBe(206);
      expect(ok.headers.get("content-range")).toBe("bytes 990-999/1000");
      expect(Buffer.from(await ok.arrayBuffer()).equals(data.subarray(990))).toBe(true);
      const backwards = await fetch(url, { headers: { ...auth, range: "bytes=9-2" } });
      expect(backwards.status).toBe(400);
      expect(backwards.headers.get("content-range")).toBeNull();
    }
    // The client reads a file like a file: from its end there is nothing more.
    expect((await readAll(vol, "f.bin", { start: 1000 })).length).toBe(0);
    expect((await readAll(vol, "f.bin", { start: 4000, end: 5000 })).length).toBe(0);
    await expect(vol.blocks.readBlock(hash, { start: 1000, end: 1010 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
  });

  it("uploadBlocks stores many small blocks in one request, each hash verified", async () => {
    await using vol = await fresh("blk-3");
    const blocks = [bytes(10), bytes(70_000), bytes(0)].map((data) => ({ hash: sha256(data), data }));
    await expect(vol.blocks.uploadBlocks([...blocks, { hash: sha256(bytes(5)), data: bytes(5) }])).rejects.toBeInstanceOf(InvalidError);
    await vol.blocks.uploadBlocks(blocks);
    expect(await vol.blocks.missingBlocks(blocks.map((b) => b.hash))).toEqual([]);
    for (const b of blocks) expect((await vol.blocks.readBlock(b.hash)).equals(b.data)).toBe(true);
    // JSON callers (curl) send the bytes base64.
    const data = bytes(33);
    const res = await fetch(`${fx.server.url}/v1/volumes/${vol.id}/blocks`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ blocks: [{ hash: sha256(data), data: data.toString("base64") }] }),
    });
    expect(res.status).toBe(200);
    expect((await vol.blocks.readBlock(sha256(data))).equals(data)).toBe(true);
  });

  it("a commit referencing a block that was never uploaded fails whole", async () => {
    await using vol = await fresh("blk-2");
    await expect(vol.blocks.commitChanges({ baseVersion: 0, changes: [dir("d"), file("d/f", ["a".repeat(64)], 10)] })).rejects.toThrow(/not been uploaded/);
    expect(await vol.blocks.latestVersion()).toBe(0);
    expect((await vol.info()).inodes).toBe(0);
  });

  it("dedup: uploading the same 50 MiB again sends no blocks", async () => {
    await using vol = await fresh("dedup-1");
    const data = bytes(50 * 1024 * 1024);
    await vol.batchUpload().putFile(data, "first.bin").commit();
    const hashes = (await vol.blocks.tree(1)).entries[0]!.blocks as string[];
    expect(hashes).toHaveLength(7);
    const before = await fx.server.storedBlobs();
    for (const h of hashes) expect(before.has(h)).toBe(true);
    await new Promise((r) => setTimeout(r, fx.server.blobs.identityResolutionMs));

    await vol.batchUpload().putFile(data, "second.bin").commit();
    // Nothing was written: same blobs, same identities (inodes, or object stamps).
    expect(await fx.server.storedBlobs()).toEqual(before);
    const tree = await vol.blocks.tree(2);
    expect(tree.entries.map((e) => e.blocks)).toEqual([hashes, hashes]);
    expect((await readAll(vol, "second.bin")).equals(data)).toBe(true);
  });
});

describe("commits, versions, deltas", () => {
  it("commits close and insert rows per path; tree pages in path order; old versions stay readable", async () => {
    await using vol = await fresh("ver-1");
    const data = bytes(10);
    await vol.blocks.uploadBlock(sha256(data), data);
    const f = (p: string) => file(p, [sha256(data)], 10);
    expect(await vol.blocks.commitChanges({ baseVersion: 0, changes: [f("a/x"), f("a/y"), f("b"), dir("c")] })).toEqual({ version: 1 });
    expect(await vol.blocks.commitChanges({ baseVersion: 1, changes: [{ op: "delete", path: "a" }, f("c/z")] })).toEqual({ version: 2 });
    expect(await vol.blocks.commitChanges({ baseVersion: 2, changes: [f("a"), { op: "delete", path: "b" }] })).toEqual({ version: 3 });
    expect(await vol.blocks.latestVersion()).toBe(3);

    expect(await allPaths(vol, 0)).toEqual([]);
    expect(await allPaths(vol, 1)).toEqual(["a", "a/x", "a/y", "b", "c"]);
    expect(await allPaths(vol, 2)).toEqual(["b", "c", "c/z"]);
    expect(await allPaths(vol, 3)).toEqual(["a", "c", "c/z"]);
    expect((await fullTree(vol, 3)).get("a")?.type).toBe("file");
    await expect(vol.blocks.tree(4)).rejects.toBeInstanceOf(NotFoundError);
    expect((await vol.info()).inodes).toBe(3);
  });

  it("delta(from, to) applied to tree(from) gives tree(to), for every pair", async () => {
    await using vol = await fresh("delta-1");
    const data = bytes(20);
    await vol.blocks.uploadBlock(sha256(data), data);
    const f = (p: string) => file(p, [sha256(data)], 20);
    const commits: Change[][] = [
      [f("a/b/c"), f("a/d"), dir("e"), { op: "put", entry: { path: "l", type: "symlink", mode: 0o777, size: 0, mtimeMs: 5, target: "a/d" } }],
      [{ op: "delete", path: "a/b" }, f("e/new"), f("a/d")],
      [{ op: "delete", path: "a" }, f("a"), f("x/y/z")],
      [dir("a-dir"), { op: "delete", path: "x" }, f("x"), { op: "delete", path: "nonexistent" }],
    ];
    for (const [i, changes] of commits.entries()) await vol.blocks.commitChanges({ baseVersion: i, changes });
    const latest = await vol.blocks.latestVersion();
    expect(latest).toBe(commits.length);
    for (let from = 0; from <= latest; from++) {
      for (let to = from; to <= latest; to++) {
        const delta = await vol.blocks.delta(from, to);
        expect(delta).toMatchObject({ from, to });
        const tree = await fullTree(vol, from);
        apply(tree, delta.changes);
        expect([...tree.entries()].sort(), `${from}→${to}`).toEqual([...(await fullTree(vol, to)).entries()].sort());
      }
    }
    expect((await vol.blocks.delta(2, 2)).changes).toEqual([]);
    // Only what changed travels, and a deleted directory is one delete.
    expect((await vol.blocks.delta(1, 2)).changes.map((c) => (c.op === "delete" ? `-${c.path}` : `+${c.entry.path}`))).toEqual(["-a/b", "+a/d", "+e/new"]);
    await expect(vol.blocks.delta(3, 1)).rejects.toBeInstanceOf(InvalidError);
  });

  it("concurrent commits from the same base merge per path; on the same path the last wins", async () => {
    await using vol = await fresh("merge-1");
    const one = bytes(5);
    const two = bytes(6);
    await vol.blocks.uploadBlock(sha256(one), one);
    await vol.blocks.uploadBlock(sha256(two), two);
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [file("shared", [sha256(one)], 5), file("mine", [sha256(one)], 5)] });
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [file("shared", [sha256(two)], 6), file("theirs", [sha256(two)], 6)] });
    expect(await allPaths(vol)).toEqual(["mine", "shared", "theirs"]);
    expect((await readAll(vol, "shared")).equals(two)).toBe(true);
  });

  it("a put over a directory replaces its subtree; a put under a file turns it into a directory (last wins)", async () => {
    await using vol = await fresh("replace-1");
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [dir("d"), dir("d/sub"), file("f")] });
    await vol.blocks.commitChanges({ baseVersion: 1, changes: [file("d"), file("f/inner")] });
    expect(await allPaths(vol)).toEqual(["d", "f", "f/inner"]);
    expect((await fullTree(vol, 2)).get("f")?.type).toBe("directory");
    expect((await vol.info()).inodes).toBe(3);
  });

  it("bad entries are refused with InvalidError", async () => {
    await using vol = await fresh("bad-1");
    const cases: Change[] = [
      file("f", [], 10),
      file("f", ["xyz"], 1),
      { op: "put", entry: { path: "l", type: "symlink", mode: 0o777, size: 0, mtimeMs: 0 } },
      { op: "put", entry: { path: "", type: "directory", mode: 0o755, size: 0, mtimeMs: 0 } },
      { op: "delete", path: "/" },
    ];
    for (const c of cases) await expect(vol.blocks.commitChanges({ baseVersion: 0, changes: [c] }), JSON.stringify(c)).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.blocks.commitChanges({ baseVersion: 9, changes: [] })).rejects.toBeInstanceOf(InvalidError);
  });
});

describe("durability", () => {
  it("a commit cut by kill -9 leaves the volume at the old or the new version, never between", async () => {
    const silo = fx.server.client();
    const vol = await silo.volumes.fromName("crash-1", { createIfMissing: true });
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [dir("before")] });
    // 10 directories × 20,000 entries: a commit that takes the server a while.
    const changes: Change[] = [];
    for (let d = 0; d < 10; d++) for (let i = 0; i < 20_000; i++) changes.push(dir(`big${d}/e${i}`));
    let answered = false;
    const inflight = vol.blocks
      .commitChanges({ baseVersion: 1, changes })
      .catch(() => undefined)
      .finally(() => (answered = true));
    // Kill once the server is writing this transaction: its pages spill into the WAL file. However
    // slow a loaded machine makes the upload and the validation, the kill waits for that event
    // (or for the answer, if the transaction never spilled), never for a length of real time.
    const wal = join(fx.server.home, "data/volumes.sqlite-wal");
    const walBefore = statSync(wal).size;
    while (statSync(wal).size === walBefore && !answered) await new Promise((r) => setTimeout(r, 2));
    await fx.server.restart("SIGKILL");
    await inflight;
    await silo.close();

    await using after = fx.server.client();
    const again = await after.volumes.fromName("crash-1");
    const version = await again.blocks.latestVersion();
    const paths = await allPaths(again);
    const info = await again.info();
    expect([1, 2]).toContain(version);
    expect(paths.length).toBe(version === 1 ? 1 : 1 + 200_010);
    expect(info.inodes).toBe(paths.length);
    // And it keeps working.
    await again.blocks.commitChanges({ baseVersion: version, changes: [dir("after")] });
    expect(await again.blocks.latestVersion()).toBe(version + 1);
  });
});
