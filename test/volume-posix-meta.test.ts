/**
 * POSIX metadata of volume entries over the real server: every field commits and reads back
 * (tree, list, delta, restore, fork), bad metadata is a 400 that applies nothing, hard links are
 * one inode across commit, delta and `volume get`, and the CLI's `ls -l`, `put` and `get` keep
 * what `cp -a` keeps. (A home from before these fields upgrading: test/schema-migrations.test.ts.)
 */
import { execFileSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, linkSync, chownSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ManifestEntry, Volume } from "../client/index.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { UnprivilegedUser } from "./helpers/unprivileged-user.js";
import { allPaths, readAll, sha256 } from "./helpers/volume-data.js";

const fx = siloServerFixture();
let seq = 0;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "silo-posix-meta-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fresh = (): Promise<Volume> => fx.server.client().volumes.fromName(`posix-${seq++}`, { createIfMissing: true });

async function rawCommit(vol: Volume, changes: unknown[]): Promise<{ status: number; json: { error?: { code: string; message: string }; version?: number } }> {
  const res = await fetch(`${fx.server.url}/v1/volumes/${vol.id}/commit`, {
    method: "POST",
    headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
    body: JSON.stringify({ baseVersion: 0, changes }),
  });
  return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string }; version?: number } };
}

const NS = "1700000000123456789";
const data = Buffer.from("hard-linked bytes\n");

/** One entry of every type with every field set. */
function everyField(): ManifestEntry[] {
  const meta = { uid: 1234, gid: 5678, mtimeNs: NS, atimeNs: "1700000001000000001", ctimeNs: "1700000002999999999", mtimeMs: 0 };
  return [
    { path: "d", type: "directory", mode: 0o3775, size: 0, ...meta, xattrs: { "user.dir": Buffer.from("x").toString("base64") } },
    { path: "d/f", type: "file", mode: 0o4755, size: data.length, blocks: [sha256(data)], ...meta, linkId: "inode-1", xattrs: { "user.a": "AAEC", "security.b": "" } },
    { path: "d/g", type: "file", mode: 0o4755, size: data.length, blocks: [sha256(data)], ...meta, linkId: "inode-1", xattrs: { "user.a": "AAEC", "security.b": "" } },
    { path: "d/l", type: "symlink", mode: 0o777, size: 1, target: "f", ...meta },
    { path: "d/p", type: "fifo", mode: 0o640, size: 0, ...meta },
    { path: "d/s", type: "socket", mode: 0o755, size: 0, ...meta },
    { path: "d/c", type: "char", mode: 0o666, size: 0, rdev: (1 << 8) | 3, ...meta },
    { path: "d/b", type: "block", mode: 0o660, size: 0, rdev: (8 << 8) | 1, ...meta, mtimeNs: "-1500000001" },
  ];
}

/** What the server should answer for `everyField()`: mtimeMs follows mtimeNs (rounded down). */
function expected(e: ManifestEntry): ManifestEntry {
  const mtimeMs = e.mtimeNs === NS ? 1700000000123 : e.mtimeNs === "-1500000001" ? -1501 : e.mtimeMs;
  return { ...e, mtimeMs };
}

const latestTree = async (vol: Volume): Promise<ManifestEntry[]> => (await vol.blocks.tree(await vol.blocks.latestVersion())).entries;

const byPath = (entries: ManifestEntry[]) => Object.fromEntries(entries.map((e) => [e.path, e]));

describe("POSIX metadata in the manifest", () => {
  it("every field commits and reads back through tree, list, delta, history, restore and fork", async () => {
    const vol = await fresh();
    await vol.blocks.uploadBlocks([{ hash: sha256(data), data }]);
    const entries = everyField();
    const { version } = await vol.blocks.commitChanges({ baseVersion: 0, changes: entries.map((entry) => ({ op: "put", entry })) });
    const want = byPath(entries.map(expected));

    expect(byPath((await vol.blocks.tree(version)).entries)).toEqual(want);
    expect(byPath((await vol.blocks.delta(0, version)).changes.map((c) => (c.op === "put" ? c.entry : ({} as ManifestEntry))))).toEqual(want);

    // The file API: mode, owner, ns times, targets, devices, links and xattrs.
    const listed = Object.fromEntries((await vol.listdir("d")).map((e) => [e.path, e]));
    expect(listed["d/f"]).toMatchObject({ type: "file", mode: 0o4755, uid: 1234, gid: 5678, mtimeNs: BigInt(NS), atimeNs: 1700000001000000001n, ctimeNs: 1700000002999999999n, linkId: "inode-1" });
    expect(listed["d/f"]!.mtime.getTime()).toBe(1700000000123);
    expect(listed["d/f"]!.xattrs).toEqual({ "user.a": Buffer.from([0, 1, 2]), "security.b": Buffer.alloc(0) });
    expect(listed["d/l"]).toMatchObject({ type: "symlink", target: "f" });
    expect(listed["d/c"]).toMatchObject({ type: "char", rdev: 259, size: 0 });
    expect(listed["d/b"]!.mtimeNs).toBe(-1500000001n);
    expect(listed["d/p"]!.type).toBe("fifo");
    expect(listed["d/s"]!.type).toBe("socket");
    // Special files have no bytes to read.
    await expect(readAll(vol, "d/p")).rejects.toThrow(/is a fifo, not a file/);
    await expect(vol.readSmallFiles(["d/c"])).rejects.toThrow(/not a file/);

    // A change of metadata only is a new version that restore undoes.
    const chowned = { ...entries[3]!, uid: 1, gid: 2 };
    const v2 = (await vol.blocks.commitChanges({ baseVersion: version, changes: [{ op: "put", entry: chowned }] })).version;
    expect((await vol.blocks.delta(version, v2)).changes).toEqual([{ op: "put", entry: expected(chowned) }]);
    expect((await vol.restore(version)).changes).toBe(1);
    expect(byPath((await latestTree(vol)))["d/l"]).toEqual(want["d/l"]);
    expect((await vol.restore(version)).changes).toBe(0);

    const fork = await vol.fork(`posix-fork-${seq++}`);
    expect(byPath((await latestTree(fork)))).toEqual(want);
  });

  it("entries of the previous kind (no POSIX fields) read back as before, with root's owner and mtime for every time", async () => {
    const vol = await fresh();
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry: { path: "old", type: "directory", mode: 0o700, size: 0, mtimeMs: 5000 } }] });
    const [e] = (await latestTree(vol));
    expect(e).toEqual({ path: "old", type: "directory", mode: 0o700, size: 0, mtimeMs: 5000 });
    const [f] = await vol.listdir("/");
    expect(f).toMatchObject({ uid: 0, gid: 0, mtimeNs: 5_000_000_000n, atimeNs: 5_000_000_000n, ctimeNs: 5_000_000_000n });
  });

  it("refuses bad metadata with a 400 and commits nothing", async () => {
    const vol = await fresh();
    await vol.blocks.uploadBlocks([{ hash: sha256(data), data }]);
    const file = (extra: Record<string, unknown>, path = "f") => ({ op: "put", entry: { path, type: "file", mode: 0o644, size: data.length, blocks: [sha256(data)], mtimeMs: 1, ...extra } });
    const special = (type: string, extra: Record<string, unknown> = {}) => ({ op: "put", entry: { path: "s", type, mode: 0o644, size: 0, mtimeMs: 1, ...extra } });
    const big = Buffer.alloc(4001).toString("base64");
    const bad: Array<[string, unknown[]]> = [
      ["a fifo with bytes", [special("fifo", { size: 3 })]],
      ["a socket with blocks", [special("socket", { blocks: [sha256(data)] })]],
      ["a char device with a target", [special("char", { target: "x" })]],
      ["rdev on a file", [file({ rdev: 5 })]],
      ["rdev on a fifo", [special("fifo", { rdev: 5 })]],
      ["a negative rdev", [special("block", { rdev: -1 })]],
      ["an unknown type", [special("door")]],
      ["a negative uid", [file({ uid: -1 })]],
      ["uid 2^32 - 1", [file({ uid: 2 ** 32 - 1 })]],
      ["a fractional gid", [file({ gid: 1.5 })]],
      ["a uid as a string", [file({ uid: "0" })]],
      ["an mtimeNs as a number", [file({ mtimeNs: 17 })]],
      ["an mtimeNs with a fraction", [file({ mtimeNs: "1.5" })]],
      ["an mtimeNs with a leading zero", [file({ mtimeNs: "01" })]],
      ["an atimeNs beyond 64 bits", [file({ atimeNs: "9223372036854775808" })]],
      ["a ctimeNs of -0", [file({ ctimeNs: "-0" })]],
      ["an xattr outside the kept namespaces", [file({ xattrs: { "system.posix_acl_access": "" } })]],
      ["an xattr with no name after its prefix", [file({ xattrs: { "user.": "" } })]],
      ["an xattr name of 256 bytes", [file({ xattrs: { [`user.${"n".repeat(251)}`]: "" } })]],
      ["an xattr value that is not base64", [file({ xattrs: { "user.a": "!!" } })]],
      ["an xattr value of 4001 bytes", [file({ xattrs: { "user.a": big } })]],
      ["xattrs of 4001 bytes together", [file({ xattrs: { "user.a": Buffer.alloc(2000).toString("base64"), "user.b": Buffer.alloc(1995).toString("base64") } })]],
      ["xattrs that are a list", [file({ xattrs: ["user.a"] })]],
      ["a linkId on a directory", [{ op: "put", entry: { path: "d", type: "directory", mode: 0o755, size: 0, mtimeMs: 1, linkId: "x" } }]],
      ["a linkId with a slash", [file({ linkId: "a/b" })]],
      ["names of one linkId with other content", [file({ linkId: "L" }, "a"), { op: "put", entry: { path: "b", type: "file", mode: 0o644, size: 0, blocks: [], mtimeMs: 1, linkId: "L" } }]],
      ["names of one linkId of other types", [file({ linkId: "L" }, "a"), { op: "put", entry: { path: "b", type: "fifo", mode: 0o644, size: 0, mtimeMs: 1, linkId: "L" } }]],
    ];
    for (const [what, changes] of bad) {
      const res = await rawCommit(vol, changes);
      expect(res.status, `${what}: ${JSON.stringify(res.json)}`).toBe(400);
      expect(res.json.error?.message, what).toBeTruthy();
    }
    expect(await allPaths(vol)).toEqual([]);
    // The limits themselves are fine: a 255-byte name, 4000 bytes of attributes, both namespaces' edges.
    const edge = await rawCommit(vol, [file({ uid: 2 ** 32 - 2, atimeNs: "-9223372036854775808", xattrs: { [`user.${"n".repeat(250)}`]: "", "trusted.t": Buffer.alloc(3736).toString("base64") } })]);
    expect(edge.status, JSON.stringify(edge.json)).toBe(200);
  });
});

describe("hard links", () => {
  it("stay one inode with several names across commit, delta and `silo volume get`", async () => {
    const vol = await fresh();
    await vol.blocks.uploadBlocks([{ hash: sha256(data), data }]);
    const name = (path: string): ManifestEntry => ({ path, type: "file", mode: 0o600, size: data.length, blocks: [sha256(data)], mtimeMs: 1, linkId: "one-inode" });
    const v1 = (await vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry: name("a") }, { op: "put", entry: name("sub/b") }] })).version;
    const puts = (await vol.blocks.delta(0, v1)).changes.filter((c) => c.op === "put" && c.entry.type === "file");
    expect(puts.map((c) => (c.op === "put" ? [c.entry.path, c.entry.linkId] : []))).toEqual([
      ["a", "one-inode"],
      ["sub/b", "one-inode"],
    ]);
    // A server-side copy is a new inode: fresh linkIds, shared among what was copied together.
    await vol.copyFiles(["/a", "/sub"], "/copy/", { recursive: true });
    const copies = (await vol.listdir("copy", { recursive: true })).filter((e) => e.type === "file");
    expect(copies.map((e) => e.path)).toEqual(["copy/a", "copy/sub/b"]);
    expect(copies[0]!.linkId).toBe(copies[1]!.linkId);
    expect(copies[0]!.linkId).not.toBe("one-inode");

    const out = join(dir, `get-links-${seq++}`);
    const res = await fx.server.cli(["volume", "get", vol.name!, "/", out]);
    expect(res.code, res.stderr).toBe(0);
    const [a, b, ca] = [join(out, "a"), join(out, "sub/b"), join(out, "copy/a")].map((p) => lstatSync(p));
    expect(a!.ino).toBe(b!.ino);
    expect(a!.nlink).toBe(2);
    expect(ca!.ino).not.toBe(a!.ino);
    expect(readFileSync(join(out, "sub/b")).equals(data)).toBe(true);
    // --no-preserve=links: copies.
    const out2 = join(dir, `get-nolinks-${seq++}`);
    expect((await fx.server.cli(["volume", "get", vol.name!, "/", out2, "--no-preserve=links"])).code).toBe(0);
    expect(lstatSync(join(out2, "a")).ino).not.toBe(lstatSync(join(out2, "sub/b")).ino);
  });
});

describe("silo volume ls -l, put and get", () => {
  /** Sets a node's times to the nanosecond (Node's utimes stops near the microsecond). */
  const touchNs = (path: string, ns: string) => execFileSync("touch", ["-h", "-d", `@${ns.slice(0, -9)}.${ns.slice(-9)}`, path]);

  it("put and get keep modes, ns times, symlinks, hard links, fifos, devices and owners (as root) like cp -a", async () => {
    expect(process.getuid?.()).toBe(0); // the suite runs as root
    const src = join(dir, `src-${seq++}`);
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "sub/run"), "#!/bin/sh\n");
    chmodSync(join(src, "sub/run"), 0o4750);
    linkSync(join(src, "sub/run"), join(src, "run-link"));
    writeFileSync(join(src, "plain"), "plain\n");
    chownSync(join(src, "plain"), 1234, 4321);
    chmodSync(join(src, "sub"), 0o2775);
    symlinkSync("sub/run", join(src, "ln"));
    execFileSync("mkfifo", [join(src, "pipe")]);
    execFileSync("mknod", [join(src, "null2"), "c", "1", "3"]);
    const times: Record<string, string> = { "sub/run": "1600000000123456789", plain: "1500000000987654321", ln: "1400000000000000001", pipe: "1300000000555555555", sub: "1200000000111111111" };
    for (const [p, t] of Object.entries(times)) touchNs(join(src, p), t);

    const vol = await fresh();
    const put = await fx.server.cli(["volume", "put", vol.name!, src, "/t"]);
    expect(put.code, put.stderr).toBe(0);
    // The volume holds the source's ns times exactly.
    const entries = Object.fromEntries((await vol.listdir("t", { recursive: true })).map((e) => [e.path.slice(2), e]));
    for (const [p, t] of Object.entries(times)) expect(entries[p]!.mtimeNs, p).toBe(BigInt(t));
    expect(entries.plain).toMatchObject({ uid: 1234, gid: 4321 });
    expect(entries["sub/run"]!.linkId).toBeDefined();
    expect(entries["sub/run"]!.linkId).toBe(entries["run-link"]!.linkId);
    expect(entries.null2).toMatchObject({ type: "char", rdev: (1 << 8) | 3 });

    const ls = await fx.server.cli(["volume", "ls", vol.name!, "/t", "-l"]);
    expect(ls.code, ls.stderr).toBe(0);
    const lines = ls.stdout.trim().split("\n");
    expect(lines.find((l) => l.endsWith(" t/ln -> sub/run"))).toMatch(/^lrwxrwxrwx +0 +0 +7 /);
    expect(lines.find((l) => l.endsWith(" t/plain"))).toMatch(/^-rw-r--r-- 1234 4321 +6 2017-07-14 02:40:00Z t\/plain$/);
    expect(lines.find((l) => l.endsWith(" t/sub/"))).toMatch(/^drwxrwsr-x /);
    expect(lines.find((l) => l.endsWith(" t/pipe"))).toMatch(/^prw-r--r-- /);
    expect(lines.find((l) => l.endsWith(" t/null2"))).toMatch(/^c[-rw]{9} +0 +0 +1, 3 /);
    expect(lines.find((l) => l.endsWith(" t/run-link"))).toMatch(/^-rwsr-x--- /);

    const dst = join(dir, `dst-${seq++}`);
    const get = await fx.server.cli(["volume", "get", vol.name!, "/t", dst]);
    expect(get.code, get.stderr).toBe(0);
    for (const p of ["sub/run", "run-link", "plain", "sub", "ln", "pipe", "null2"]) {
      const s = lstatSync(join(src, p), { bigint: true });
      const d = lstatSync(join(dst, p), { bigint: true });
      expect(d.mode, p).toBe(s.mode); // type and permission bits
      expect([d.uid, d.gid], p).toEqual([s.uid, s.gid]);
      expect(d.rdev, p).toBe(s.rdev);
      // Node sets times through a double of seconds, cut to the microsecond: the nearest one.
      const drift = d.mtimeNs - s.mtimeNs;
      expect(drift <= 500n && drift >= -500n, `${p}: ${d.mtimeNs} vs ${s.mtimeNs}`).toBe(true);
    }
    expect(readlinkSync(join(dst, "ln"))).toBe("sub/run");
    expect(lstatSync(join(dst, "run-link")).ino).toBe(lstatSync(join(dst, "sub/run")).ino);

    // Opting out: defaults instead of the source's mode, times and owner.
    const vol2 = await fresh();
    expect((await fx.server.cli(["volume", "put", vol2.name!, src, "/t", "--no-preserve=mode,ownership,timestamps,links"])).code).toBe(0);
    const plain = (await vol2.listdir("t")).find((e) => e.path === "t/plain")!;
    expect(plain).toMatchObject({ uid: 0, gid: 0, mode: 0o644 });
    expect(plain.mtimeNs).not.toBe(BigInt(times.plain!));
    expect((await vol2.listdir("t")).find((e) => e.path === "t/run-link")!.linkId).toBeUndefined();
    const bad = await fx.server.cli(["volume", "get", vol.name!, "/t", join(dir, "x"), "--no-preserve=colour"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--no-preserve takes/);
  });

  it("run as another user, get keeps modes and times, makes fifos, skips devices with a warning and leaves files the caller's", async () => {
    const vol = await fresh();
    await vol.blocks.uploadBlocks([{ hash: sha256(data), data }]);
    const meta = { uid: 1234, gid: 4321, mtimeMs: 0, mtimeNs: NS };
    await vol.blocks.commitChanges({
      baseVersion: 0,
      changes: [
        { op: "put", entry: { path: "f", type: "file", mode: 0o640, size: data.length, blocks: [sha256(data)], ...meta } },
        { op: "put", entry: { path: "p", type: "fifo", mode: 0o600, size: 0, ...meta } },
        { op: "put", entry: { path: "c", type: "char", mode: 0o600, size: 0, rdev: 259, ...meta } },
      ],
    });
    const user = await UnprivilegedUser.create();
    try {
      const out = join(user.home, "out");
      const serverEnv = { SILO_SERVER_URL: fx.server.url, SILO_TOKEN_ID: fx.server.profile.tokenId, SILO_TOKEN_SECRET: fx.server.profile.tokenSecret };
      const res = await user.silo(["volume", "get", vol.name!, "/", out], serverEnv);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/skipped char 'c' \(devices are made only as root\)/);
      const f = lstatSync(join(out, "f"), { bigint: true });
      expect([Number(f.uid), Number(f.gid)]).toEqual([user.uid, user.gid]);
      expect(Number(f.mode & 0o7777n)).toBe(0o640);
      expect(f.mtimeNs - BigInt(NS) < 1000n && BigInt(NS) - f.mtimeNs < 1000n).toBe(true);
      expect(lstatSync(join(out, "p")).isFIFO()).toBe(true);
      expect(() => lstatSync(join(out, "c"))).toThrow(/ENOENT/);
    } finally {
      await user.cleanup();
    }
  });
});
