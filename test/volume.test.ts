import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  BLOCK_SIZE,
  InvalidError,
  NoSpaceError,
  NotFoundError,
  type Volume,
} from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { allPaths, bytes, readAll } from "./helpers/volume-data.js";

let local: string;
const fx = siloServerFixture();
beforeAll(async () => {
  local = mkdtempSync(join(tmpdir(), "silo-vol-local-"));
});
afterAll(async () => {
  rmSync(local, { recursive: true, force: true });
});

async function fresh(name: string, opts: { inodeLimit?: number } = {}): Promise<Volume> {
  const silo = fx.server.client();
  return silo.volumes.fromName(name, { createIfMissing: true, ...opts });
}

describe("named volumes", () => {
  it("fromName, objects.list, info, rename and delete", async () => {
    await using silo = fx.server.client();
    await expect(silo.volumes.fromName("nv-1")).rejects.toBeInstanceOf(NotFoundError);
    const vol = await silo.volumes.fromName("nv-1", { createIfMissing: true, inodeLimit: 1234 });
    expect(vol.id).toMatch(/^vo-/);
    const info = await vol.info();
    expect(info).toMatchObject({ name: "nv-1", version: 0, inodes: 0, inodeLimit: 1234 });
    expect(info.createdAt).toBeInstanceOf(Date);
    expect((await silo.volumes.objects.list()).map((v) => v.name)).toContain("nv-1");

    await silo.volumes.rename("nv-1", "nv-2");
    await expect(silo.volumes.fromName("nv-1")).rejects.toBeInstanceOf(NotFoundError);
    expect((await silo.volumes.fromName("nv-2")).id).toBe(vol.id);
    await silo.volumes.objects.create("nv-3");
    await expect(silo.volumes.rename("nv-2", "nv-3")).rejects.toBeInstanceOf(AlreadyExistsError);

    await silo.volumes.delete("nv-2");
    await expect(vol.info()).rejects.toBeInstanceOf(NotFoundError);
    await expect(silo.volumes.delete("nv-2")).rejects.toBeInstanceOf(NotFoundError);
    await silo.volumes.delete("nv-2", { allowMissing: true });
    await expect(silo.volumes.fromName("bad", { createIfMissing: true, inodeLimit: 0 })).rejects.toBeInstanceOf(InvalidError);
  });

  it("an ephemeral volume works until closed", async () => {
    await using silo = fx.server.client();
    let id: string;
    {
      await using vol = await silo.volumes.ephemeral();
      id = vol.id;
      expect(vol.name).toBeNull();
      await vol.batchUpload().putFile(Buffer.from("x"), "f").commit();
      expect(await vol.listdir("/")).toHaveLength(1);
      expect((await vol.info()).inodes).toBe(1);
    }
    const res = await fetch(`${fx.server.url}/v1/volumes/${id}/info`, {
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}` },
    });
    expect(res.status).toBe(404);
  });
});

describe("uploads and reads", () => {
  it("batchUpload lands files from bytes, streams and local paths in ONE commit", async () => {
    await using vol = await fresh("up-1");
    const big = bytes(BLOCK_SIZE * 2 + 12345);
    const small = bytes(1000);
    const file = join(local, "local.bin");
    writeFileSync(file, small);
    const batch = vol.batchUpload();
    batch.putFile(big, "/data/big.bin");
    batch.putFile(Readable.from([big.subarray(0, 100), big.subarray(100, 5000)]), "streamed.bin");
    batch.putFile(file, "sub/dir/local.bin");
    expect(await vol.blocks.latestVersion()).toBe(0);
    expect(await batch.commit()).toBe(1);
    expect(await vol.blocks.latestVersion()).toBe(1);
    expect((await readAll(vol, "data/big.bin")).equals(big)).toBe(true);
    expect((await readAll(vol, "streamed.bin")).equals(big.subarray(0, 5000))).toBe(true);
    expect((await readAll(vol, "/sub/dir/local.bin")).equals(small)).toBe(true);
    await expect(batch.commit()).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.batchUpload().putFile(join(local, "no-such-file"), "x").commit()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a large local file is read into reused block buffers, none reused while its block is still in flight", async () => {
    await using vol = await fresh("up-reuse");
    // More blocks than the engine holds at once (64 MiB), all different: a buffer handed back
    // before its upload finished would send (or hash) the next block's bytes in its place.
    const data = bytes(BLOCK_SIZE * 11 + 4321);
    const file = join(local, "reuse.bin");
    writeFileSync(file, data);
    await vol.batchUpload().putFile(file, "reuse.bin").commit();
    expect((await readAll(vol, "reuse.bin")).equals(data)).toBe(true);
  });

  it("readFile serves byte ranges, across block boundaries too", async () => {
    await using vol = await fresh("range-1");
    const data = bytes(BLOCK_SIZE + 500);
    await vol.batchUpload().putFile(data, "f").commit();
    const cases: Array<[number, number]> = [[0, 10], [BLOCK_SIZE - 5, BLOCK_SIZE + 5], [BLOCK_SIZE, BLOCK_SIZE + 500], [7, 7]];
    for (const [start, end] of cases) {
      expect((await readAll(vol, "f", { start, end })).equals(data.subarray(start, end))).toBe(true);
    }
    expect((await readAll(vol, "f", { start: BLOCK_SIZE + 400 })).equals(data.subarray(BLOCK_SIZE + 400))).toBe(true);
    await expect(readAll(vol, "missing")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("readSmallFiles returns several whole files in one request; large files and dirs are refused", async () => {
    await using vol = await fresh("small-1");
    const a = bytes(10);
    const b = bytes(100_000); // stored as a blob file, not inline
    await vol.batchUpload().putFile(a, "a").putFile(b, "d/b").putFile(bytes(1024 * 1024 + 1), "big").commit();
    const got = await vol.readSmallFiles(["d/b", "/a"]);
    expect(got.map((f) => f.path)).toEqual(["d/b", "a"]);
    expect(got[0]!.data.equals(b)).toBe(true);
    expect(got[1]!.data.equals(a)).toBe(true);
    await expect(vol.readSmallFiles(["big"])).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.readSmallFiles(["d"])).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.readSmallFiles(["nope"])).rejects.toBeInstanceOf(NotFoundError);
  });

  it("putDirectory uploads a tree (with symlinks and empty dirs); `await using` commits at the end", async () => {
    await using vol = await fresh("dir-1");
    const src = join(local, "tree");
    mkdirSync(join(src, "a/b"), { recursive: true });
    mkdirSync(join(src, "empty"));
    writeFileSync(join(src, "top.txt"), "top");
    writeFileSync(join(src, "a/b/deep.txt"), "deep");
    symlinkSync("top.txt", join(src, "link"));
    {
      await using batch = vol.batchUpload();
      batch.putDirectory(src, "/copy");
    }
    expect(await allPaths(vol)).toEqual(["copy", "copy/a", "copy/a/b", "copy/a/b/deep.txt", "copy/empty", "copy/link", "copy/top.txt"]);
    const link = (await vol.listdir("copy/link"))[0]!;
    expect(link).toMatchObject({ type: "symlink", size: 7 });
    expect((await readAll(vol, "copy/a/b/deep.txt")).toString()).toBe("deep");
  });

  it("without force an existing file fails the batch and nothing lands; with force it is replaced", async () => {
    await using vol = await fresh("force-1");
    await vol.batchUpload().putFile(Buffer.from("old"), "f").commit();
    const batch = vol.batchUpload().putFile(Buffer.from("new"), "f").putFile(Buffer.from("other"), "g");
    await expect(batch.commit()).rejects.toBeInstanceOf(AlreadyExistsError);
    expect(await vol.blocks.latestVersion()).toBe(1);
    expect(await allPaths(vol)).toEqual(["f"]);
    expect((await readAll(vol, "f")).toString()).toBe("old");

    await vol.batchUpload({ force: true }).putFile(Buffer.from("new"), "f").putFile(Buffer.from("other"), "g").commit();
    expect((await readAll(vol, "f")).toString()).toBe("new");
    // A file never replaces a directory, force or not.
    await vol.batchUpload().putFile(Buffer.from("x"), "d/x").commit();
    await expect(vol.batchUpload({ force: true }).putFile(Buffer.from("y"), "d").commit()).rejects.toBeInstanceOf(InvalidError);
  });
});

describe("listing", () => {
  it("listdir and iterdir: direct children or recursive, a file lists itself, missing → NotFound", async () => {
    await using vol = await fresh("ls-1");
    await vol.batchUpload().putFile(Buffer.from("12345"), "a/one").putFile(Buffer.from("1"), "a/b/two").putFile(Buffer.from(""), "top").commit();
    const root = await vol.listdir("/");
    expect(root.map((e) => [e.path, e.type])).toEqual([["a", "directory"], ["top", "file"]]);
    expect(root[1]!.mtime).toBeInstanceOf(Date);
    expect((await vol.listdir("a")).map((e) => e.path)).toEqual(["a/b", "a/one"]);
    expect((await vol.listdir("a", { recursive: true })).map((e) => e.path)).toEqual(["a/b", "a/b/two", "a/one"]);
    expect(await vol.listdir("a/one")).toEqual([expect.objectContaining({ path: "a/one", type: "file", size: 5 })]);
    const iterated: string[] = [];
    for await (const e of vol.iterdir("/")) iterated.push(e.path);
    expect(iterated).toEqual(["a", "a/b", "a/b/two", "a/one", "top"]);
    await expect(vol.listdir("nope")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("iterdir pages through a directory larger than one page", async () => {
    await using vol = await fresh("ls-2");
    const changes = Array.from({ length: 2500 }, (_, i) => ({
      op: "put" as const,
      entry: { path: `many/d${String(i).padStart(5, "0")}`, type: "directory" as const, mode: 0o755, size: 0, mtimeMs: 1 },
    }));
    await vol.blocks.commitChanges({ baseVersion: 0, changes });
    let n = 0;
    for await (const e of vol.iterdir("many", { recursive: false })) {
      expect(e.path).toBe(`many/d${String(n).padStart(5, "0")}`);
      n++;
    }
    expect(n).toBe(2500);
  });
});

describe("remove and copy", () => {
  it("removeFile removes files, refuses non-empty dirs without recursive", async () => {
    await using vol = await fresh("rm-1");
    await vol.batchUpload().putFile(Buffer.from("1"), "d/x").putFile(Buffer.from("2"), "f").commit();
    await vol.removeFile("f");
    await expect(vol.removeFile("d")).rejects.toBeInstanceOf(InvalidError);
    await vol.removeFile("d", { recursive: true });
    expect(await allPaths(vol)).toEqual([]);
    expect((await vol.info()).inodes).toBe(0);
    await expect(vol.removeFile("d")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("copyFiles follows cp: onto a file, into a directory, -r for directories; blocks are shared", async () => {
    await using vol = await fresh("cp-1");
    const data = bytes(3000);
    await vol.batchUpload().putFile(data, "src/a.txt").putFile(Buffer.from("b"), "src/sub/b.txt").putFile(Buffer.from("z"), "z").commit();
    await vol.copyFiles(["src/a.txt"], "renamed.txt");
    expect((await readAll(vol, "renamed.txt")).equals(data)).toBe(true);
    await vol.batchUpload().putFile(Buffer.from(""), "dest/.keep").commit();
    await vol.copyFiles(["src/a.txt", "z"], "dest");
    expect((await vol.listdir("dest")).map((e) => e.path)).toEqual(["dest/.keep", "dest/a.txt", "dest/z"]);
    await expect(vol.copyFiles(["src"], "dest")).rejects.toBeInstanceOf(InvalidError);
    await vol.copyFiles(["src"], "dest", { recursive: true });
    expect((await readAll(vol, "dest/src/sub/b.txt")).toString()).toBe("b");
    await vol.copyFiles(["src"], "fresh-dir", { recursive: true });
    expect((await vol.listdir("fresh-dir", { recursive: true })).map((e) => e.path)).toEqual(["fresh-dir/a.txt", "fresh-dir/sub", "fresh-dir/sub/b.txt"]);
    await expect(vol.copyFiles(["src/a.txt", "z"], "not-a-dir")).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.copyFiles(["src"], "src/sub", { recursive: true })).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.copyFiles(["missing"], "x")).rejects.toBeInstanceOf(NotFoundError);
    const tree = await vol.blocks.tree(await vol.blocks.latestVersion());
    const blocksOf = (p: string) => tree.entries.find((e) => e.path === p)!.blocks;
    expect(blocksOf("dest/a.txt")).toEqual(blocksOf("src/a.txt"));
  });
});

describe("read-only handles", () => {
  it("every write method throws InvalidError; reads work", async () => {
    await using vol = await fresh("ro-1");
    await vol.batchUpload().putFile(Buffer.from("r"), "r").commit();
    const ro = vol.readOnly();
    const msg = "Read-only Volume can not be written to";
    expect(() => ro.batchUpload()).toThrow(msg);
    await expect(ro.removeFile("r")).rejects.toThrow(msg);
    await expect(ro.copyFiles(["r"], "s")).rejects.toThrow(msg);
    await expect(ro.blocks.uploadBlock("0".repeat(64), Buffer.from("x"))).rejects.toBeInstanceOf(InvalidError);
    await expect(ro.blocks.commitChanges({ baseVersion: 1, changes: [] })).rejects.toBeInstanceOf(InvalidError);
    expect((await readAll(ro, "r")).toString()).toBe("r");
    expect(await ro.listdir("/")).toHaveLength(1);
  });
});

describe("limits and path confinement", () => {
  it("paths with .., NUL, over-long names escape nowhere: InvalidError and nothing lands", async () => {
    await using vol = await fresh("paths-1");
    const bad = ["../x", "a/../../x", "a/..", "x\0y", `${"n".repeat(256)}`, `${"d/".repeat(2100)}f`];
    for (const p of bad) {
      await expect(vol.batchUpload().putFile(Buffer.from("x"), p).commit(), p).rejects.toBeInstanceOf(InvalidError);
      await expect(vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "delete", path: p }] }), p).rejects.toBeInstanceOf(InvalidError);
    }
    await expect(vol.listdir("../")).rejects.toBeInstanceOf(InvalidError);
    await expect(readAll(vol, "../../etc/passwd")).rejects.toBeInstanceOf(InvalidError);
    await expect(vol.copyFiles(["/"], "../out", { recursive: true })).rejects.toBeInstanceOf(InvalidError);
    expect(await vol.blocks.latestVersion()).toBe(0);
    // A leading slash is the volume root, not the host's.
    await vol.batchUpload().putFile(Buffer.from("x"), "/./ok//file").commit();
    expect(await allPaths(vol)).toEqual(["ok", "ok/file"]);
  });

  it("the inode limit counts files, dirs and symlinks; past it NoSpaceError and nothing partial", async () => {
    await using vol = await fresh("inodes-1", { inodeLimit: 5 });
    await vol.batchUpload().putFile(Buffer.from("1"), "a/1").putFile(Buffer.from("2"), "a/2").commit(); // a, a/1, a/2
    const over = vol.batchUpload().putFile(Buffer.from("3"), "b/3").putFile(Buffer.from("4"), "b/4"); // +3 → 6
    await expect(over.commit()).rejects.toBeInstanceOf(NoSpaceError);
    await expect(vol.batchUpload().putFile(Buffer.from("3"), "b/3").putFile(Buffer.from("4"), "b/4").commit()).rejects.toThrow(/ENOSPC/);
    expect(await allPaths(vol)).toEqual(["a", "a/1", "a/2"]);
    expect((await vol.info()).inodes).toBe(3);
    await vol.batchUpload().putFile(Buffer.from("3"), "b/3").commit(); // exactly 5
    expect((await vol.info()).inodes).toBe(5);
    // Replacing keeps the count; deleting frees.
    await vol.batchUpload({ force: true }).putFile(Buffer.from("33"), "b/3").commit();
    await vol.removeFile("a", { recursive: true });
    expect((await vol.info()).inodes).toBe(2);
  });

  it("at most 32,768 entries in one directory", async () => {
    await using vol = await fresh("dirlimit-1");
    const dir = (i: number) => ({ op: "put" as const, entry: { path: `d/${i}`, type: "directory" as const, mode: 0o755, size: 0, mtimeMs: 0 } });
    await vol.blocks.commitChanges({ baseVersion: 0, changes: Array.from({ length: 32_768 }, (_, i) => dir(i)) });
    await expect(vol.blocks.commitChanges({ baseVersion: 1, changes: [dir(40_000)] })).rejects.toBeInstanceOf(NoSpaceError);
    // Replacing an existing entry is fine, and so is adding elsewhere.
    await vol.blocks.commitChanges({ baseVersion: 1, changes: [dir(5), { op: "put", entry: { ...dir(1).entry, path: "e/1" } }] });
    expect((await vol.info()).inodes).toBe(32_768 + 3);
  });

  it("files must be smaller than 1 TiB", async () => {
    await using vol = await fresh("big-1");
    const size = 2 ** 40;
    const blocks = Array.from({ length: size / BLOCK_SIZE }, () => "0".repeat(64));
    await expect(vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry: { path: "huge", type: "file", mode: 0o644, size, mtimeMs: 0, blocks } }] })).rejects.toThrow(/smaller than/);
  });
});

describe("isolation", () => {
  it("another workspace and another environment see neither the volume nor its files", async () => {
    await using admin = fx.server.client();
    const vol = await admin.volumes.fromName("private-vol", { createIfMissing: true });
    await vol.batchUpload().putFile(Buffer.from("secret"), "s").commit();

    const ws = await admin.workspaces.create("vol-tenant");
    await using tenant = fx.server.client({ tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    await expect(tenant.volumes.fromName("private-vol")).rejects.toBeInstanceOf(NotFoundError);
    expect(await tenant.volumes.objects.list()).toEqual([]);
    await admin.environments.create("vol-dev");
    await using dev = fx.server.client({ environment: "vol-dev" });
    await expect(dev.volumes.fromName("private-vol")).rejects.toBeInstanceOf(NotFoundError);

    // Even knowing the id does not help: every route resolves it within the caller's namespace.
    for (const [token, env] of [[ws, "main"], [fx.server.profile, "vol-dev"]] as const) {
      const res = await fetch(`${fx.server.url}/v1/volumes/${vol.id}/file?path=s`, {
        headers: { authorization: `Bearer ${token.tokenId}:${token.tokenSecret}`, "x-silo-environment": env },
      });
      expect(res.status).toBe(404);
    }
    // Same name elsewhere is a different volume.
    const other = await tenant.volumes.fromName("private-vol", { createIfMissing: true });
    expect(other.id).not.toBe(vol.id);
    expect(await other.listdir("/")).toEqual([]);
  });
});
