import { describe, expect, it } from "vitest";
import { waitFor } from "./helpers/eventually.js";
import { AlreadyExistsError, InvalidError, NotFoundError, VersionGoneError } from "../client/index.js";
import { SiloServer, siloServerFixture } from "./helpers/silo-server.js";
import { allPaths, bytes, readAll } from "./helpers/volume-data.js";

// Versions stay retained for a minute (GC runs every 100 ms; unreferenced blocks go after 5 s).
// The grace must outlast an upload on a loaded machine: blocks collected between a batch's upload
// and its commit fail the commit (500 ms did under load 17), and the GC cases only wait longer.
const fx = siloServerFixture(["--volume-retention-ms", "60000", "--volume-block-grace-ms", "5000", "--volume-gc-interval-ms", "100"]);

const text = (s: string) => Buffer.from(s);

describe("volume history", () => {
  it("lists versions newest first with their time, token and changes; a path narrows it; pages", async () => {
    await using admin = fx.server.client();
    const other = await admin.tokens.create({ label: "second" });
    await using second = fx.server.client({ tokenId: other.tokenId, tokenSecret: other.tokenSecret });
    const vol = await admin.volumes.fromName("hist-1", { createIfMissing: true });
    const before = Date.now();
    await vol.batchUpload().putFile(text("a1"), "/d/a").putFile(text("b1"), "/b").commit(); // v1
    const vol2 = await second.volumes.fromName("hist-1");
    await vol2.batchUpload({ force: true }).putFile(text("a2"), "/d/a").commit(); // v2
    await vol.removeFile("/b"); // v3
    await vol.copyFiles(["/d"], "/e", { recursive: true }); // v4

    const page = await vol.history();
    expect(page.versions.map((v) => v.version)).toEqual([4, 3, 2, 1, 0]);
    const [v4, v3, v2, v1] = page.versions;
    expect(v1).toMatchObject({ tokenId: fx.server.profile.tokenId, put: { count: 3, paths: ["b", "d", "d/a"] }, removed: { count: 0, paths: [] } });
    expect(v1!.createdAt).toBeGreaterThanOrEqual(before - 1000);
    expect(v2).toMatchObject({ tokenId: other.tokenId, put: { count: 1, paths: ["d/a"] }, removed: { count: 0 } });
    expect(v3).toMatchObject({ tokenId: fx.server.profile.tokenId, put: { count: 0 }, removed: { count: 1, paths: ["b"] } });
    expect(v4).toMatchObject({ put: { count: 2, paths: ["e", "e/a"] } });

    // Only the versions that changed /d/a (or below /d).
    expect((await vol.history({ path: "/d/a" })).versions.map((v) => v.version)).toEqual([2, 1]);
    expect((await vol.history({ path: "d" })).versions.map((v) => v.version)).toEqual([2, 1]);
    expect((await vol.history({ path: "/b" })).versions.map((v) => v.version)).toEqual([3, 1]);
    expect((await vol.history({ path: "/nothing" })).versions).toEqual([]);

    // Paging: newest two, then the rest.
    const first = await vol.history({ limit: 2 });
    expect(first.versions.map((v) => v.version)).toEqual([4, 3]);
    const rest = await vol.history({ before: first.next! });
    expect(rest.versions.map((v) => v.version)).toEqual([2, 1, 0]);
    expect(rest.next).toBeUndefined();
  });
});

describe("volume restore", () => {
  it("brings back a file, a directory subtree, or the whole volume as a new commit, changing only what differs", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("restore-1", { createIfMissing: true });
    const big = bytes(300_000);
    await vol.batchUpload().putFile(text("one"), "/f").putFile(big, "/dir/big").putFile(text("x"), "/dir/x").commit(); // v1
    await vol.batchUpload({ force: true }).putFile(text("two"), "/f").putFile(text("new"), "/dir/new").commit(); // v2
    await vol.removeFile("/dir/big"); // v3
    await vol.removeFile("/dir/x"); // v4

    // One file.
    const r1 = await vol.restore(1, "/f");
    expect(r1).toEqual({ version: 5, changes: 1 });
    expect((await readAll(vol, "f")).toString()).toBe("one");
    expect((await readAll(vol, "dir/new")).toString()).toBe("new");
    // Nothing differs: no new version.
    expect(await vol.restore(1, "/f")).toEqual({ version: 5, changes: 0 });

    // A subtree: deleted files come back, files created since go; /f is untouched.
    await vol.batchUpload({ force: true }).putFile(text("three"), "/f").commit(); // v6
    const r2 = await vol.restore(1, "dir");
    expect(r2.version).toBe(7);
    expect(await allPaths(vol)).toEqual(["dir", "dir/big", "dir/x", "f"]);
    expect((await readAll(vol, "dir/big")).equals(big)).toBe(true);
    expect((await readAll(vol, "f")).toString()).toBe("three");

    // The whole volume, to a version where /dir held /new.
    await vol.restore(2);
    expect(await allPaths(vol)).toEqual(["dir", "dir/big", "dir/new", "dir/x", "f"]);
    expect((await readAll(vol, "f")).toString()).toBe("two");
    const latest = (await vol.history({ limit: 1 })).versions[0]!;
    expect(latest.note).toBe("restore of / from version 2");

    await expect(vol.restore(1, "/never")).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.restore(99)).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.readOnly().restore(1)).rejects.toBeInstanceOf(InvalidError);
  });

  it("an empty volume (rm -r /) comes back from the version before", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("restore-2", { createIfMissing: true });
    await vol.batchUpload().putFile(text("a"), "/a").putFile(text("b"), "/sub/b").commit();
    const v = await vol.blocks.latestVersion();
    await vol.removeFile("/", { recursive: true });
    expect(await allPaths(vol)).toEqual([]);
    await vol.restore(v);
    expect(await allPaths(vol)).toEqual(["a", "sub", "sub/b"]);
  });
});

describe("volume fork", () => {
  it("makes a new volume from a kept version without copying bytes; GC keeps the shared blocks until both are gone", async () => {
    await using silo = fx.server.client();
    const src = await silo.volumes.fromName("fork-src", { createIfMissing: true });
    const large = bytes(400_000);
    const small = bytes(3000);
    await src.batchUpload().putFile(large, "/large").putFile(small, "/s/small").commit(); // v1
    const later = bytes(200_000);
    await src.batchUpload({ force: true }).putFile(later, "/large").commit(); // v2
    const laterHash = (await src.blocks.tree(2)).entries.find((e) => e.path === "large")!.blocks![0] as string;
    const blobsBefore = await fx.server.storedBlobs();

    const fork = await silo.volumes.fork("fork-src", "fork-dst", { version: 1 });
    expect(await allPaths(fork)).toEqual(["large", "s", "s/small"]);
    expect((await readAll(fork, "large")).equals(large)).toBe(true);
    const info = await fork.info();
    expect(info).toMatchObject({ version: 1, inodes: 3, name: "fork-dst" });
    expect((await fork.history()).versions[0]).toMatchObject({ version: 1, note: "fork of fork-src at version 1", put: { count: 3 } });
    // No bytes copied: the blob store holds exactly what it held.
    expect([...(await fx.server.storedBlobs()).keys()].sort()).toEqual([...blobsBefore.keys()].sort());
    // The fork is a volume of its own.
    await fork.batchUpload().putFile(text("mine"), "/mine").commit();
    expect(await allPaths(src)).toEqual(["large", "s", "s/small"]);
    await expect(silo.volumes.fork("fork-src", "fork-dst")).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(src.fork("fork-gone", { version: 99 })).rejects.toBeInstanceOf(NotFoundError);
    await expect(silo.volumes.fromName("fork-gone")).rejects.toBeInstanceOf(NotFoundError);

    // The source goes: once GC has collected the block only it used, the fork still reads every byte.
    await silo.volumes.delete("fork-src");
    const largeHash = (await fork.blocks.tree(1)).entries.find((e) => e.path === "large")!.blocks![0] as string;
    await waitFor("the source's own block to be collected", async () => !(await fx.server.storedBlobs()).has(laterHash));
    expect((await fx.server.storedBlobs()).has(largeHash)).toBe(true);
    expect((await readAll(fork, "large")).equals(large)).toBe(true);
    expect((await readAll(fork, "s/small")).equals(small)).toBe(true);

    // Once the fork goes too, its blocks are collected.
    await silo.volumes.delete("fork-dst");
    await waitFor("the shared block to be collected", async () => !(await fx.server.storedBlobs()).has(largeHash));
  });

  it("a version that is no longer retained can not be forked or restored", async () => {
    const server = await SiloServer.start(["--volume-retention-ms", "0", "--volume-gc-interval-ms", "100"]);
    try {
      await using silo = server.client();
      const vol = await silo.volumes.fromName("old", { createIfMissing: true });
      await vol.batchUpload().putFile(text("a"), "/a").commit();
      await vol.batchUpload({ force: true }).putFile(text("b"), "/a").commit();
      await waitFor("GC to drop version 1", async () => (await vol.info()).oldestVersion === 2);
      await expect(vol.fork("old-fork", { version: 1 })).rejects.toBeInstanceOf(VersionGoneError);
      await expect(vol.restore(1)).rejects.toBeInstanceOf(VersionGoneError);
      await expect(silo.volumes.fromName("old-fork")).rejects.toBeInstanceOf(NotFoundError);
      // The oldest retained version does not know what it removed any more: history says so.
      expect((await vol.history()).versions).toEqual([expect.objectContaining({ version: 2, partial: true })]);
    } finally {
      await server.cleanup();
    }
  });
});

describe("the CLI", () => {
  it("history, restore, fork; rm -r of the root asks first and refuses without a terminal", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("cli-hist", { createIfMissing: true });
    await vol.batchUpload().putFile(text("a"), "/a").putFile(text("b"), "/d/b").commit();

    const refused = await fx.server.cli(["volume", "rm", "-r", "cli-hist", "/"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Remove every file of volume 'cli-hist'\?.*--yes/s);
    expect(await allPaths(vol)).toEqual(["a", "d", "d/b"]);
    // Not the root: no question.
    expect((await fx.server.cli(["volume", "rm", "-r", "cli-hist", "/d"])).code).toBe(0);
    const emptied = await fx.server.cli(["volume", "rm", "-r", "--yes", "cli-hist", "/"]);
    expect(emptied.code).toBe(0);
    expect(await allPaths(vol)).toEqual([]);

    const history = await fx.server.cli(["volume", "history", "cli-hist"]);
    expect(history.code).toBe(0);
    expect(history.stdout).toContain(fx.server.profile.tokenId);
    expect(history.stdout).toMatch(/removed 1: \/a/);
    const json = JSON.parse((await fx.server.cli(["volume", "history", "cli-hist", "/d", "--json"])).stdout) as Array<{ version: number }>;
    expect(json.map((v) => v.version)).toEqual([2, 1]);

    const restored = await fx.server.cli(["volume", "restore", "cli-hist", "--version", "1"]);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/Restored the volume to version 1 as version 4/);
    expect(await allPaths(vol)).toEqual(["a", "d", "d/b"]);
    const missingVersion = await fx.server.cli(["volume", "restore", "cli-hist"]);
    expect(missingVersion.code).not.toBe(0);

    const forked = await fx.server.cli(["volume", "fork", "cli-hist", "cli-fork", "--version", "2"]);
    expect(forked.code).toBe(0);
    expect(await allPaths(await silo.volumes.fromName("cli-fork"))).toEqual(["a"]);
  });
});
