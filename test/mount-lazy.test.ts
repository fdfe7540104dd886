/**
 * A volume mount loads its tree directory by directory (fuse/volume/lazy-load.ts): what an
 * operation needs is read at the mount's view version, and nothing it has not read is ever
 * committed as gone. The mount's status counts the directories it read (`loadedDirs`).
 */
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdir, open, readFile, readdir, stat, unlink, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { mountStatus } from "../cli/mount-status.js";
import { controlRequest } from "../client/mount-control.js";
import type { Volume } from "../client/index.js";
import type { ManifestEntry } from "../protocol/volume.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { waitFor } from "./helpers/eventually.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { barrier, committedText as committed, mountsFixture, within } from "./helpers/volume-mounts.js";
import { PYTHON } from "./helpers/python.js";

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-mount-lazy-");

const text = (p: string) => readFile(p, "utf8");
const run = promisify(execFile);
const loadedDirs = async (dir: string): Promise<number> => (await mountStatus(dir)).loadedDirs;
const reload = (dir: string) => within(30_000, "reload", controlRequest(join(stateDirFor(dir), "control.sock"), "reload"));

/** A volume of ten directories, each with a subdirectory and three files in each. */
async function seeded(name: string): Promise<Volume> {
  const vol = await fx.silo.volumes.fromName(name, { createIfMissing: true });
  const batch = vol.batchUpload();
  for (let d = 0; d < 10; d++) {
    for (let f = 0; f < 3; f++) {
      batch.putFile(Buffer.from(`d${d}/f${f}`), `d${d}/f${f}`);
      batch.putFile(Buffer.from(`d${d}/sub/f${f}`), `d${d}/sub/f${f}`);
    }
  }
  await batch.commit();
  return vol;
}

describe("a mount loads directories on demand", () => {
  it("reads only the root at mount, and only the directories a path walks through", async () => {
    await seeded("lazy-walk");
    const dir = join(root, "walk");
    await mounts.mount("lazy-walk", dir, "--commit-interval-ms", "0");
    expect(await loadedDirs(dir)).toBe(1);
    expect(await text(join(dir, "d3/sub/f1"))).toBe("d3/sub/f1");
    // The root, d3 and d3/sub: none of the other 18 directories.
    expect(await loadedDirs(dir)).toBe(3);
    expect((await readdir(join(dir, "d4"))).sort()).toEqual(["f0", "f1", "f2", "sub"]);
    expect(await loadedDirs(dir)).toBe(4);
    // A directory's link count is exact once it is answered for: 2 + its subdirectories.
    expect((await stat(join(dir, "d5"))).nlink).toBe(3);
    expect((await stat(dir)).nlink).toBe(12);
    await mounts.unmount(dir);
  });

  it("reads a few directories ahead of a recursive walk; one beyond them still needs the server", async () => {
    await seeded("lazy-ahead");
    const dir = join(root, "ahead");
    await mounts.mount("lazy-ahead", dir, "--commit-interval-ms", "0");
    expect(await readdir(dir)).toHaveLength(10);
    // A listing of a listed directory's subdirectory is a walk: it goes on to d0/sub, d1, …, d9
    // next, which are read meanwhile (up to 16 ahead: lazy-load.ts, READ_AHEAD_DIRS), but not
    // into d1/sub, …: what a walk reaches after those is read ahead only once it gets closer.
    expect(await readdir(join(dir, "d0"))).toHaveLength(4);
    await waitFor("the read-ahead", async () => (await loadedDirs(dir)) >= 12, 30_000);
    expect(await loadedDirs(dir)).toBe(12);
    await fx.server.stop();
    try {
      expect((await readdir(join(dir, "d2"))).sort()).toEqual(["f0", "f1", "f2", "sub"]);
      expect((await readdir(join(dir, "d0/sub"))).sort()).toEqual(["f0", "f1", "f2"]);
      expect((await readdir(join(dir, "d9"))).sort()).toEqual(["f0", "f1", "f2", "sub"]);
      await expect(readdir(join(dir, "d9/sub"))).rejects.toMatchObject({ code: "EIO" });
    } finally {
      await fx.server.launch();
    }
    expect((await readdir(join(dir, "d9/sub"))).sort()).toEqual(["f0", "f1", "f2"]);
    await mounts.unmount(dir);
  });

  it("commits changes in loaded directories and never deletes what it did not read", async () => {
    const vol = await seeded("lazy-commit");
    const dir = join(root, "commit");
    await mounts.mount("lazy-commit", dir, "--commit-interval-ms", "0");
    await writeFile(join(dir, "d1/f0"), "changed");
    await writeFile(join(dir, "d1/sub/new"), "new");
    await unlink(join(dir, "d2/f2"));
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-commit", "d1/f0")).toBe("changed");
    expect(await committed(fx.silo, "lazy-commit", "d1/sub/new")).toBe("new");
    expect(await committed(fx.silo, "lazy-commit", "d2/f2")).toBeNull();
    // 10 directories, each with sub and 3 + 3 files: all still there, one new, one unlinked.
    const tree = (await vol.blocks.tree(await vol.blocks.latestVersion(), { limit: 1000 })).entries.map((e) => e.path);
    expect(tree).toHaveLength(10 * 8 + 1 - 1);
    expect(tree).toContain("d9/sub/f2");
  });

  it("renames a directory it has not read with everything below it", async () => {
    await seeded("lazy-rename");
    const dir = join(root, "rename");
    await mounts.mount("lazy-rename", dir, "--commit-interval-ms", "0");
    const { rename } = await import("node:fs/promises");
    await rename(join(dir, "d6"), join(dir, "moved"));
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-rename", "moved/sub/f2")).toBe("d6/sub/f2");
    expect(await committed(fx.silo, "lazy-rename", "moved/f0")).toBe("d6/f0");
    expect(await committed(fx.silo, "lazy-rename", "d6/f0")).toBeNull();
  });

  it("shows a reload's version in a directory it had not read yet", async () => {
    const vol = await seeded("lazy-reload");
    const dir = join(root, "reload");
    await mounts.mount("lazy-reload", dir, "--commit-interval-ms", "0");
    expect(await text(join(dir, "d0/f0"))).toBe("d0/f0");
    const before = await loadedDirs(dir);
    // Another writer changes d7 (never read here) and d0 (read).
    await vol.batchUpload({ force: true }).putFile(Buffer.from("d7 v2"), "d7/f0").putFile(Buffer.from("d7 new"), "d7/sub/g").putFile(Buffer.from("d0 v2"), "d0/f0").commit();
    await vol.removeFile("d7/f1");
    await reload(dir);
    expect(await loadedDirs(dir)).toBe(before);
    expect(await text(join(dir, "d0/f0"))).toBe("d0 v2");
    expect((await readdir(join(dir, "d7"))).sort()).toEqual(["f0", "f2", "sub"]);
    expect(await text(join(dir, "d7/f0"))).toBe("d7 v2");
    expect(await text(join(dir, "d7/sub/g"))).toBe("d7 new");
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-reload", "d7/f2")).toBe("d7/f2");
  });

  it("lists files without making their nodes: a listed name's number is the one its stat gives, and a reload's change of it shows", async () => {
    // More names than the kernel's first READDIRPLUS page holds: the rest come by plain READDIR,
    // which names a file by its place in the listing (no node), as getdents' d_ino shows.
    const vol = await fx.silo.volumes.fromName("lazy-listed", { createIfMissing: true });
    const batch = vol.batchUpload();
    for (let i = 0; i < 600; i++) batch.putFile(Buffer.from(`v1 ${i}`), `big/f${i}`);
    await batch.commit();
    const dir = join(root, "listed");
    await mounts.mount("lazy-listed", dir, "--commit-interval-ms", "0");
    const big = join(dir, "big");
    const { stdout } = await run(PYTHON, ["-c", "import os,sys\nfor e in os.scandir(sys.argv[1]): print(e.name, e.inode())", big]);
    const listed = new Map(stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
    expect(listed.size).toBe(600);
    for (const [name, ino] of listed) expect([name, (await stat(join(big, name))).ino]).toEqual([name, Number(ino)]);
    // Names listed here and never looked up since a second listing: another writer changes, removes and adds some.
    await readdir(big);
    await vol.batchUpload({ force: true }).putFile(Buffer.from("v2 f500"), "big/f500").putFile(Buffer.from("new"), "big/g").commit();
    await vol.removeFile("big/f501");
    await reload(dir);
    expect(await text(join(big, "f500"))).toBe("v2 f500");
    expect(await text(join(big, "g"))).toBe("new");
    await expect(stat(join(big, "f501"))).rejects.toMatchObject({ code: "ENOENT" });
    const names = await readdir(big);
    expect([names.length, names.includes("f501"), names.includes("g")]).toEqual([600, false, true]);
    expect(await text(join(big, "f599"))).toBe("v1 599");
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-listed", "big/f599")).toBe("v1 599");
  });

  it("an open directory lists the names it had at opendir, each once, while names are removed and added meanwhile", async () => {
    // An open handle lists a snapshot (fuse-ops.ts, DirSnapshot): what changes after opendir must
    // neither show up nor vanish from that handle, past the first READDIRPLUS page too.
    const vol = await fx.silo.volumes.fromName("lazy-handle", { createIfMissing: true });
    const changes: Array<{ op: "put"; entry: ManifestEntry }> = [];
    for (let i = 0; i < 600; i++) changes.push({ op: "put", entry: { path: `big/f${i}`, type: "file", mode: 0o644, size: 0, mtimeMs: 1_700_000_000_000, blocks: [] } });
    await vol.blocks.commitChanges({ baseVersion: await vol.blocks.latestVersion(), changes });
    const dir = join(root, "handle");
    await mounts.mount("lazy-handle", dir, "--commit-interval-ms", "0");
    const big = join(dir, "big");
    // One handle: 10 names read, then 100 later names removed and 50 added through the mount, then the rest read.
    const script = [
      "import os,sys",
      "d=sys.argv[1]",
      "it=os.scandir(d)",
      "seen=[next(it).name for _ in range(10)]",
      "for i in range(300,400): os.unlink(os.path.join(d,'f%d'%i))",
      "for i in range(50): open(os.path.join(d,'h%d'%i),'w').close()",
      "seen+=[e.name for e in it]",
      "print('\\n'.join(seen))",
    ].join("\n");
    const { stdout } = await run(PYTHON, ["-c", script, big]);
    const seen = stdout.trim().split("\n");
    expect(seen.length).toBe(600);
    expect(new Set(seen)).toEqual(new Set(Array.from({ length: 600 }, (_, i) => `f${i}`)));
    // A handle opened now lists the directory as it is.
    const now = await readdir(big);
    expect([now.length, now.includes("f300"), now.includes("h49")]).toEqual([550, false, true]);
    await mounts.unmount(dir);
  });

  it("lists a directory of more than one listing page whole, each name with its own entry (modes, times, links, symlinks, non-ASCII names)", async () => {
    // Past the loader's 10,000-entry page (lazy-load.ts, LIST_PAGE): the pages are kept as the
    // server's bytes and joined (listing.ts); every entry must come back as committed.
    const vol = await fx.silo.volumes.fromName("lazy-pages", { createIfMissing: true });
    const n = 10_050;
    const name = (i: number) => (i % 1000 === 7 ? `ü-名前-${i}` : `n${String(i).padStart(5, "0")}`);
    const changes: Array<{ op: "put"; entry: ManifestEntry }> = [];
    for (let i = 0; i < n; i++) changes.push({ op: "put", entry: { path: `big/${name(i)}`, type: "file", mode: 0o600 | (i % 3 === 0 ? 0o044 : 0), size: 0, mtimeMs: 1_700_000_000_000 + i * 1000, uid: i % 5, gid: 0, blocks: [] } });
    changes.push({ op: "put", entry: { path: "big/zz-link", type: "symlink", mode: 0o777, size: 6, mtimeMs: 1_700_000_000_000, target: name(n - 1) } });
    await vol.blocks.commitChanges({ baseVersion: await vol.blocks.latestVersion(), changes });
    const dir = join(root, "pages");
    await mounts.mount("lazy-pages", dir, "--commit-interval-ms", "0");
    const names = await within(60_000, "readdir", readdir(join(dir, "big")));
    expect(names.length).toBe(n + 1);
    expect(new Set(names)).toEqual(new Set([...Array.from({ length: n }, (_, i) => name(i)), "zz-link"]));
    for (const i of [0, 7, 9_999, 10_000, 10_007, n - 1]) {
      const st = await stat(join(dir, "big", name(i)));
      expect([i, st.mode & 0o777, st.mtimeMs, st.uid]).toEqual([i, 0o600 | (i % 3 === 0 ? 0o044 : 0), 1_700_000_000_000 + i * 1000, i % 5]);
    }
    expect(await run("readlink", [join(dir, "big/zz-link")]).then((r) => r.stdout.trim())).toBe(name(n - 1));
    await writeFile(join(dir, "big", name(10_003)), "changed");
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-pages", `big/${name(10_003)}`)).toBe("changed");
    expect(await committed(fx.silo, "lazy-pages", `big/${name(10_004)}`)).toBe("");
  });

  it("keeps a hard link whole when one name is in a directory it had not read", async () => {
    const vol = await fx.silo.volumes.fromName("lazy-link", { createIfMissing: true });
    const data = Buffer.from("linked v1");
    await vol.batchUpload().putFile(data, "seed").putFile(Buffer.from("x"), "b/other").commit();
    const hash = createHash("sha256").update(data).digest("hex");
    const meta = { mode: 0o644, size: data.length, blocks: [hash], mtimeMs: 1_700_000_000_000, linkId: "lazy-1" };
    await vol.blocks.commitChanges({
      baseVersion: await vol.blocks.latestVersion(),
      changes: [
        { op: "put", entry: { path: "a/x", type: "file", ...meta } },
        { op: "put", entry: { path: "b/deep/y", type: "file", ...meta } },
      ],
    });
    const dir = join(root, "link");
    await mounts.mount("lazy-link", dir, "--commit-interval-ms", "0");
    const x = await stat(join(dir, "a/x"));
    expect(x.nlink).toBe(2);
    await writeFile(join(dir, "a/x"), "linked v2");
    expect(await text(join(dir, "b/deep/y"))).toBe("linked v2");
    expect((await stat(join(dir, "b/deep/y"))).ino).toBe(x.ino);
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-link", "a/x")).toBe("linked v2");
    expect(await committed(fx.silo, "lazy-link", "b/deep/y")).toBe("linked v2");
    expect(await committed(fx.silo, "lazy-link", "b/other")).toBe("x");
  });

  it("replays a killed mount's journal into directories the new daemon had not read", async () => {
    await seeded("lazy-crash");
    const dir = join(root, "crash");
    await mounts.mount("lazy-crash", dir, "--commit-interval-ms", "0");
    await writeFile(join(dir, "d7/new"), "journaled");
    await writeFile(join(dir, "d8/sub/f0"), "rewritten");
    await unlink(join(dir, "d9/f1"));
    await barrier(dir);
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    await expect(within(10_000, "stat dead mount", stat(join(dir, "d7")))).rejects.toSatisfy((e: NodeJS.ErrnoException) =>
      ["ENOTCONN", "ECONNABORTED"].includes(e.code ?? ""),
    );
    await mounts.mount("lazy-crash", dir, "--commit-interval-ms", "0");
    expect(await text(join(dir, "d7/new"))).toBe("journaled");
    expect((await readdir(join(dir, "d9"))).sort()).toEqual(["f0", "f2", "sub"]);
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-crash", "d7/new")).toBe("journaled");
    expect(await committed(fx.silo, "lazy-crash", "d7/f0")).toBe("d7/f0");
    expect(await committed(fx.silo, "lazy-crash", "d8/sub/f0")).toBe("rewritten");
    expect(await committed(fx.silo, "lazy-crash", "d8/sub/f1")).toBe("d8/sub/f1");
    expect(await committed(fx.silo, "lazy-crash", "d9/f1")).toBeNull();
    expect(await committed(fx.silo, "lazy-crash", "d9/f2")).toBe("d9/f2");
  });

  it("reads ahead of a walk within a share of the inode cache and trims meanwhile: the walk is whole, memory bounded, nothing read ahead unloaded before use", async () => {
    const vol = await fx.silo.volumes.fromName("lazy-ahead-cache", { createIfMissing: true });
    const dirs = 150;
    const files = 20;
    const name = (d: number) => `w${String(d).padStart(3, "0")}`;
    const batch = vol.batchUpload();
    for (let d = 0; d < dirs; d++) for (let f = 0; f < files; f++) batch.putFile(Buffer.from(""), `${name(d)}/f${f}`);
    await batch.commit();
    const dir = join(root, "ahead-cache");
    const limit = 400;
    await mounts.mountWithEnv({ SILO_INODE_CACHE: String(limit) }, "lazy-ahead-cache", dir, "--commit-interval-ms", "0");
    // A walk that stops after its first directory: read-ahead goes as far as a quarter of the
    // cache in entries (lazy-load.ts, READ_AHEAD_CACHE_SHARE), plus the listings already on
    // their way when that filled (at most 3 more: READ_AHEAD_FETCHES), not 16 directories.
    expect(await readdir(dir)).toHaveLength(dirs);
    expect(await readdir(join(dir, name(0)))).toHaveLength(files);
    await waitFor("the read-ahead to settle", async () => (await mountStatus(dir)).readAhead.loading === 0, 30_000);
    const ahead = (await mountStatus(dir)).readAhead;
    expect(ahead.ahead).toBeGreaterThanOrEqual(limit / 4 / files);
    expect(ahead.aheadEntries).toBeGreaterThanOrEqual(limit / 4);
    expect(ahead.aheadEntries).toBeLessThanOrEqual(limit / 4 + 3 * files);
    // The whole walk: read-ahead runs all along, and trimming with it (a read-ahead in flight
    // does not hold it off), so the loaded entries stay near the limit, far below the tree's.
    const { stdout } = await run("find", [dir], { maxBuffer: 1 << 24 });
    const found = stdout.trim().split("\n").map((p) => p.slice(dir.length + 1)).filter((p) => p !== "");
    const expected: string[] = [];
    for (let d = 0; d < dirs; d++) {
      expected.push(name(d));
      for (let f = 0; f < files; f++) expected.push(`${name(d)}/f${f}`);
    }
    expect(found.sort()).toEqual(expected.sort());
    const status = await mountStatus(dir);
    expect(status.readAhead.dirs).toBeGreaterThanOrEqual(dirs / 2);
    expect(status.unloadedDirs).toBeGreaterThanOrEqual(dirs / 2);
    // At most the limit, the share read ahead, and the 4 listings on their way, applied before
    // the next trim (480 in every run here); a read-ahead that held trimming off came to 680–1,340.
    expect(status.cachedInodesPeak).toBeLessThanOrEqual(limit + limit / 4 + 4 * files);
    // Every directory was read once: none read ahead was unloaded before the walk got to it.
    expect([status.loadedDirs, status.rereadDirs]).toEqual([dirs + 1, 0]);
    await mounts.unmount(dir);
  });

  it("reads ahead of a new walk when an earlier one stopped with its share of the cache read ahead", async () => {
    const vol = await fx.silo.volumes.fromName("lazy-ahead-next", { createIfMissing: true });
    const files = 20;
    const batch = vol.batchUpload();
    for (let d = 0; d < 30; d++) for (let f = 0; f < files; f++) batch.putFile(Buffer.from(""), `a/w${d}/f${f}`);
    for (let d = 0; d < 10; d++) for (let f = 0; f < files; f++) batch.putFile(Buffer.from(""), `zz/o${d}/f${f}`);
    await batch.commit();
    const dir = join(root, "ahead-next");
    const limit = 400;
    await mounts.mountWithEnv({ SILO_INODE_CACHE: String(limit) }, "lazy-ahead-next", dir, "--commit-interval-ms", "0");
    const settled = async () => {
      await waitFor("the read-ahead to settle", async () => (await mountStatus(dir)).readAhead.loading === 0, 30_000);
      return (await mountStatus(dir)).readAhead;
    };
    await readdir(dir);
    await readdir(join(dir, "a"));
    await readdir(join(dir, "a/w0"));
    const first = await settled();
    expect(first.aheadEntries).toBeGreaterThanOrEqual(limit / 4);
    // A walk elsewhere, the first one's directories never reached: they give way to its own.
    expect(await readdir(join(dir, "zz"))).toHaveLength(10);
    const second = await settled();
    expect(second.dirs - first.dirs).toBeGreaterThanOrEqual(limit / 4 / files);
    expect(second.aheadEntries).toBeLessThanOrEqual(limit / 4 + 3 * files);
    expect((await readdir(join(dir, "zz/o9"))).length).toBe(files);
    await mounts.unmount(dir);
  });

  it("keeps its memory within the inode cache: a walk unloads what it read, never a local change, and reads it again", async () => {
    const vol = await fx.silo.volumes.fromName("lazy-cache", { createIfMissing: true });
    const batch = vol.batchUpload();
    for (let d = 0; d < 60; d++) for (let f = 0; f < 20; f++) batch.putFile(Buffer.from(`c${d}/f${f}`), `c${d}/f${f}`);
    // Listed first, in several READDIRPLUS pages: each page's entries the kernel took must be forgettable.
    for (let f = 0; f < 1000; f++) batch.putFile(Buffer.from(`big/f${f}`), `big/f${f}`);
    await batch.commit();
    const dir = join(root, "cache");
    const limit = 100;
    await mounts.mountWithEnv({ SILO_INODE_CACHE: String(limit) }, "lazy-cache", dir, "--commit-interval-ms", "0");
    const before = await stat(join(dir, "c5/f3"));
    // A directory made here and committed was never loaded from the server: it may go too, so it
    // must come back whole (its files are empty: one whose bytes were written here keeps its
    // local copy, and its directory).
    await mkdir(join(dir, "a-made"));
    for (let f = 0; f < 20; f++) await writeFile(join(dir, `a-made/f${f}`), "");
    await within(30_000, "commit", controlRequest(join(stateDirFor(dir), "control.sock"), "commit"));
    // Local state no read of the server gives back: a changed file, a new one, one held open.
    await writeFile(join(dir, "c0/f0"), "changed, not committed");
    await writeFile(join(dir, "c2/new"), "new, not committed");
    const held = await open(join(dir, "c1/f1"), "r+");
    try {
      await held.write("OPEN", 0);
      await promisify(execFile)("find", [dir]);
      // Every directory was read; most were unloaded again. What stays loaded: the three with
      // local state (21 entries each at most), the 6 used last (tree-cache.ts) and what the cache holds.
      await waitFor("the walk's directories unloaded", async () => (await mountStatus(dir)).cachedInodes <= limit + 3 * 21 + 6 * 20, 30_000);
      const status = await mountStatus(dir);
      expect(status.inodeCacheLimit).toBe(limit);
      expect(status.loadedDirs).toBeGreaterThanOrEqual(62);
      expect(status.unloadedDirs).toBeGreaterThanOrEqual(42);
      expect(status.dirtyPaths).toBeGreaterThanOrEqual(2);
      // Nothing local was dropped.
      expect(await text(join(dir, "c0/f0"))).toBe("changed, not committed");
      expect(await text(join(dir, "c2/new"))).toBe("new, not committed");
      expect((await held.read(Buffer.alloc(64), 0, 64, 0)).bytesRead).toBe("c1/f1".length);
      expect(await text(join(dir, "c1/f1"))).toBe("OPEN1");
      // An unloaded directory is read from the server again: same bytes, same attributes. (No
      // directory is opened for listing until the counts are taken: opening one whose parent
      // was listed reads its later siblings ahead, which would count as loads at any moment.)
      const loaded = (await mountStatus(dir)).loadedDirs;
      expect(await text(join(dir, "c5/f3"))).toBe("c5/f3");
      expect((await mountStatus(dir)).loadedDirs).toBe(loaded + 1);
      const after = await stat(join(dir, "c5/f3"));
      expect([after.size, after.mode, after.mtimeMs, after.uid, after.nlink]).toEqual([before.size, before.mode, before.mtimeMs, before.uid, before.nlink]);
      const readAgain = async (what: () => Promise<void>) => {
        const n = await loadedDirs(dir);
        await what();
        expect(await loadedDirs(dir)).toBe(n + 1);
      };
      await readAgain(async () => expect(await text(join(dir, "big/f999"))).toBe("big/f999"));
      // a-made (made here) goes only if the kernel's FORGETs of its names come while the cache is
      // still over its limit, which depends on timing: its listing is checked, not its reload.
      expect(await readdir(join(dir, "a-made"))).toHaveLength(20);
      expect((await readdir(join(dir, "c2"))).length).toBe(21);
    } finally {
      await held.close();
    }
    await mounts.unmount(dir);
    expect(await committed(fx.silo, "lazy-cache", "c0/f0")).toBe("changed, not committed");
    expect(await committed(fx.silo, "lazy-cache", "c2/new")).toBe("new, not committed");
    expect(await committed(fx.silo, "lazy-cache", "c1/f1")).toBe("OPEN1");
    expect(await committed(fx.silo, "lazy-cache", "c5/f3")).toBe("c5/f3");
  });
});
