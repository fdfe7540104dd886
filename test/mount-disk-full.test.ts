/**
 * The mount's own disk is full (docs/mounts.md, "When the local disk is full"): the daemon's
 * journal, upper files, block cache and log are on a small tmpfs that the test fills (test
 * disk-full.test.ts is about the server's disk). Writes fail with ENOSPC, a close or fsync the
 * journal cannot hold fails (a 0 is a promise), the mount keeps serving, nothing a close or fsync
 * acknowledged is lost (also across kill -9), and committed files stay readable.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MountStatusReport, mountStatus } from "../cli/mount-status.js";
import { controlRequest } from "../client/mount-control.js";
import { readMountRecord } from "../fuse/common/mount-records.js";
import { barrier, committedBytes, committedText, Mounts, within } from "./helpers/volume-mounts.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { SmallDisk } from "./helpers/tmpfs.js";
import { waitFor } from "./helpers/eventually.js";
import { JOURNAL_RESERVE_BYTES, Journal, type JournalRecord, readRecords } from "../fuse/volume/journal.js";

const MiB = 1024 * 1024;
const fx = siloServerFixture();
let mounts: Mounts;
let root: string;
let disks: SmallDisk[] = [];

beforeAll(() => {
  mounts = new Mounts(fx.server);
  root = mkdtempSync(join(tmpdir(), "silo-mount-full-"));
});
// Also after a failed test: the mounts first (their daemons hold files on the disks), then the disks.
afterEach(async () => {
  for (const d of disks) {
    d.free();
    for (const f of readdirSync(d.dir)) if (f.startsWith("ballast-")) rmSync(join(d.dir, f));
  }
  await mounts.cleanup();
  for (const d of disks) d.unmount();
  disks = [];
});
afterAll(async () => {
  await mounts?.cleanup();
  for (const d of disks) d.unmount();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A small disk for one test, unmounted in afterEach. */
function smallDisk(bytes: number, inodes?: number): SmallDisk {
  const d = SmallDisk.mount(bytes, inodes);
  disks.push(d);
  return d;
}

/** Mounts `name` at `dir` with everything the daemon keeps locally on `disk`: journal (upper files), block cache, control socket, log. */
async function mountOn(disk: SmallDisk, name: string, dir: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  await mounts.mountWithEnv({ ...env, SILO_JOURNAL_DIR: join(disk.dir, "journals") }, name, dir, "--state-dir", join(disk.dir, "state"), "--commit-interval-ms", "0");
}

/** The daemon's status report (through its control socket, found by its mount record). */
const status = (dir: string): Promise<MountStatusReport> => mountStatus(dir);

const errCode = (p: Promise<unknown>) => p.then(() => "ok", (err: NodeJS.ErrnoException) => err.code ?? String(err));

/** Whether the process runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Takes `bytes` of the disk with a file of its own (`rm` it to give them back). */
function ballast(disk: SmallDisk, bytes: number): string {
  const path = join(disk.dir, `ballast-${randomBytes(4).toString("hex")}`);
  writeFileSync(path, Buffer.alloc(bytes, 1));
  return path;
}

/** Takes all but `bytes` of the disk's free space with a file of its own. */
function leaveFree(disk: SmallDisk, bytes: number): string {
  const { bavail, bsize } = statfsSync(disk.dir);
  return ballast(disk, bavail * bsize - bytes);
}

/** Fills the last page of the daemon's log (`<state dir>.log`): lines fit there after the disk is full. */
function takeLogSlack(disk: SmallDisk): void {
  try {
    appendFileSync(join(disk.dir, "state.log"), Buffer.alloc(8192, "#"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  }
}

/** Reads a file through one descriptor, then closes it: its bytes, and how the close went. */
async function readThenClose(path: string): Promise<{ data: Buffer; close: string }> {
  const fh = await open(path, "r");
  const { size } = await fh.stat();
  const buf = Buffer.alloc(size);
  for (let at = 0; at < size; ) {
    const { bytesRead } = await fh.read(buf, at, size - at, at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return { data: buf, close: await errCode(fh.close()) };
}



interface Outcome {
  /** Bytes the write calls returned. */
  written: number;
  /** Error codes of the calls that failed (write, fsync, close); none: acknowledged. */
  codes: string[];
}

/** create, write all of `data` (short writes go on), maybe fsync, close: each call's error is kept. */
async function writeOne(path: string, data: Buffer, sync: boolean): Promise<Outcome> {
  const out: Outcome = { written: 0, codes: [] };
  const fh = await open(path, "w");
  try {
    while (out.written < data.length) {
      const { bytesWritten } = await fh.write(data, out.written, data.length - out.written, out.written);
      if (bytesWritten === 0) throw new Error("a write returned 0");
      out.written += bytesWritten;
    }
    if (sync) await fh.sync();
  } catch (err) {
    out.codes.push((err as NodeJS.ErrnoException).code ?? String(err));
  }
  await fh.close().catch((err: NodeJS.ErrnoException) => out.codes.push(err.code ?? String(err)));
  return out;
}

/** Files written until the disk is full and `afterFull` more: what was acknowledged (every call returned 0) and what failed. */
async function writeUntilFull(dir: string, afterFull: number): Promise<{ acked: Map<string, Buffer>; failed: Map<string, { data: Buffer } & Outcome> }> {
  const acked = new Map<string, Buffer>();
  const failed = new Map<string, { data: Buffer } & Outcome>();
  const sizes = [0, 1, 3_000, 70_000, 300_000, 1_200_000, 8 * MiB + 5_000];
  for (let i = 0; failed.size < afterFull; i++) {
    if (i > 400) throw new Error("the disk never filled");
    const name = `f${String(i).padStart(3, "0")}`;
    const data = randomBytes(sizes[i % sizes.length]!);
    const r = await within(60_000, `write ${name}`, writeOne(join(dir, name), data, i % 3 === 0));
    if (r.codes.length === 0) acked.set(name, data);
    else failed.set(name, { data, ...r });
  }
  return { acked, failed };
}

/** Every failure is the disk being full: ENOSPC, never EIO or a dead mount. */
function expectOnlyNoSpace(failed: Map<string, Outcome>): void {
  const codes = new Set([...failed.values()].flatMap((f) => f.codes));
  expect([...codes]).toEqual(["ENOSPC"]);
}

describe("the mount's local disk is full", () => {
  it("writes fail with ENOSPC (new file, growing one); a close or fsync the journal cannot hold fails; the mount stays usable", async () => {
    const disk = smallDisk(32 * MiB);
    await fx.silo.volumes.fromName("lfull-errno", { createIfMissing: true });
    const dir = join(root, "errno");
    await mountOn(disk, "lfull-errno", dir);
    const pid = await mounts.daemonPid(dir);
    // A path whose journal record is longer than a page: its append needs a new one.
    let deep = dir;
    for (let i = 0; i < 15; i++) await mkdir((deep = join(deep, "d".repeat(250))));
    const old = randomBytes(100_000);
    await writeFile(join(dir, "grow.bin"), old);

    // Growing a file while 256 KiB are left: what fits is a short write, then ENOSPC.
    const taken = leaveFree(disk, 256 * 1024);
    const g = await open(join(dir, "grow.bin"), "a");
    const more = randomBytes(MiB);
    let appended = 0;
    let code = "ok";
    while (code === "ok" && appended < more.length) {
      await g.write(more, appended, more.length - appended).then(
        ({ bytesWritten }) => void (appended += bytesWritten),
        (err: NodeJS.ErrnoException) => void (code = err.code ?? String(err)),
      );
    }
    expect(code).toBe("ENOSPC");
    expect(appended).toBeGreaterThan(128 * 1024);
    // Its small journal record may still fit into the log's last page.
    expect(["ok", "ENOSPC"]).toContain(await errCode(g.close()));

    // A new file on the full disk.
    disk.fill();
    const fh = await open(join(deep, "new.bin"), "w");
    expect(await errCode(fh.write(Buffer.alloc(MiB, 2)))).toBe("ENOSPC");
    expect(await errCode(fh.sync())).toBe("ENOSPC");
    expect(await errCode(fh.close())).toBe("ENOSPC");

    // Growing it further by truncate shows zeros past what the writes returned: no byte of the failed write.
    const t = await open(join(dir, "grow.bin"), "r+");
    await t.truncate(old.length + appended + 5_000);
    expect(await errCode(t.close())).toBe("ENOSPC");
    const grown = Buffer.concat([old, more.subarray(0, appended), Buffer.alloc(5_000)]);

    // The mount stays usable: lookups, reads, names (in memory). A reader's close fails too while
    // the journal cannot take the changes made before it (a 0 would promise they survive kill -9).
    expect((await stat(join(dir, "grow.bin"))).size).toBe(grown.length);
    expect(await readThenClose(join(dir, "grow.bin"))).toEqual({ data: grown, close: "ENOSPC" });
    expect((await readdir(dir)).sort()).toEqual(["d".repeat(250), "grow.bin"]);
    await mkdir(join(dir, "later"));
    await rename(join(deep, "new.bin"), join(dir, "later", "new.bin"));
    expect((await stat(join(dir, "later", "new.bin"))).size).toBe(0);
    expect((await status(dir)).lastJournalError).toMatch(/ENOSPC/);
    // A commit while full: the server takes it; the journal cannot be rewritten, which the daemon
    // logs, to a log on the full disk as well (whose last page the test takes first): it goes on.
    takeLogSlack(disk);
    const c = await fx.server.cli(["volume", "commit", dir]);
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    expect(alive(pid)).toBe(true);
    // The commit holds every change made so far: a close has nothing left to promise.
    expect(await readThenClose(join(dir, "grow.bin"))).toEqual({ data: grown, close: "ok" });
    expect((await committedBytes(fx.silo, "lfull-errno", "grow.bin"))?.equals(grown)).toBe(true);
    expect(await committedText(fx.silo, "lfull-errno", "later/new.bin")).toBe("");

    // Space again: closes succeed, and everything reaches the server.
    disk.free();
    rmSync(taken);
    await writeFile(join(dir, "after.txt"), "after");
    await waitFor("the journal error is gone", async () => (await status(dir)).lastJournalError === null);
    await mounts.unmount(dir);
    expect((await committedBytes(fx.silo, "lfull-errno", "grow.bin"))?.equals(grown)).toBe(true);
    expect(await committedText(fx.silo, "lfull-errno", "later/new.bin")).toBe("");
    expect(await committedText(fx.silo, "lfull-errno", "after.txt")).toBe("after");
  });

  it("ledger: kill -9 after the disk filled; after freeing space, recovery commits every acknowledged file and no failed one in a state the docs do not allow", async () => {
    const disk = smallDisk(48 * MiB);
    const taken = ballast(disk, 34 * MiB);
    await fx.silo.volumes.fromName("lfull-kill", { createIfMissing: true });
    const dir = join(root, "kill");
    await mountOn(disk, "lfull-kill", dir);
    const { acked, failed } = await writeUntilFull(dir, 12);
    expectOnlyNoSpace(failed);
    expect(acked.size).toBeGreaterThan(3);
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    // Mounting again while the disk is still full fails, saying why, and keeps the journal for the next try.
    disk.fill();
    const refused = await within(
      60_000,
      "mount on a full disk",
      fx.server.cli(["volume", "mount", "lfull-kill", dir, "--state-dir", join(disk.dir, "state"), "--commit-interval-ms", "0"], { env: { SILO_JOURNAL_DIR: join(disk.dir, "journals") } }),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/no space left on device/);
    disk.free();
    rmSync(taken);

    await mountOn(disk, "lfull-kill", dir);
    await mounts.unmount(dir);
    const vol = await fx.silo.volumes.fromName("lfull-kill");
    const sizes = new Map((await vol.listdir("")).map((e) => [e.path, e.size]));
    const read = async (p: string) => (await committedBytes(fx.silo, "lfull-kill", p)) ?? Buffer.alloc(0);
    for (const [p, data] of acked) {
      expect(sizes.get(p), `${p} committed`).toBe(data.length);
      expect((await read(p)).equals(data), `${p} exact`).toBe(true);
    }
    // A failed file is absent, or holds a prefix of what its writes returned (docs: a short write counts as what it returned).
    for (const [p, f] of failed) {
      if (!sizes.has(p)) continue;
      const got = await read(p);
      expect(got.length, `${p} length`).toBeLessThanOrEqual(f.written);
      expect(got.equals(f.data.subarray(0, got.length)), `${p} is a prefix`).toBe(true);
    }
    expect([...sizes.keys()].every((p) => acked.has(p) || failed.has(p))).toBe(true);
  });

  it("after space is freed (no kill), writing works again and a commit makes everything acknowledged durable", async () => {
    const disk = smallDisk(48 * MiB);
    const taken = ballast(disk, 34 * MiB);
    await fx.silo.volumes.fromName("lfull-free", { createIfMissing: true });
    const dir = join(root, "free");
    await mountOn(disk, "lfull-free", dir);
    const { acked, failed } = await writeUntilFull(dir, 8);
    expectOnlyNoSpace(failed);
    // A file deleted while the journal cannot record it: its local copy goes once it can.
    const [gone, goneData] = [...acked].find(([, d]) => d.length > 8 * MiB)!;
    // The space the local copies (upper files) of the mount's files take.
    const localBytes = () => {
      let n = 0;
      const walk = (d: string, upper: boolean): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory()) walk(join(d, e.name), upper || e.name === "upper");
          else if (upper) n += statSync(join(d, e.name)).blocks * 512;
        }
      };
      walk(join(disk.dir, "journals"), false);
      return n;
    };
    const before = localBytes();
    await rm(join(dir, gone));
    acked.delete(gone);
    // Its record takes the journal's reserve (no write before it used that), and the copy goes at once.
    await barrier(dir);
    expect(before - localBytes()).toBeGreaterThanOrEqual(goneData.length);
    // A commit while the disk is nearly full: the server takes it.
    const c = await fx.server.cli(["volume", "commit", dir]);
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    rmSync(taken);
    await barrier(dir);

    for (let i = 0; i < 5; i++) {
      const data = randomBytes(200_000 + i);
      const r = await writeOne(join(dir, `again${i}`), data, i % 2 === 0);
      expect(r.codes).toEqual([]);
      acked.set(`again${i}`, data);
    }
    const commit = await fx.server.cli(["volume", "commit", dir]);
    expect(commit.code).toBe(0);
    const read = async (p: string) => committedBytes(fx.silo, "lfull-free", p);
    for (const [p, data] of acked) expect((await read(p))?.equals(data), `${p} committed exactly`).toBe(true);
    expect(await read(gone)).toBe(null);
    // A failed file holds exactly what its writes returned, on the mount and on the server.
    for (const [p, f] of failed) {
      const want = f.data.subarray(0, f.written);
      expect((await readFile(join(dir, p))).equals(want), `${p} on the mount`).toBe(true);
      expect((await read(p))?.equals(want), `${p} committed`).toBe(true);
    }
    expect((await status(dir)).lastJournalError).toBe(null);
    // Unmounting on a full disk: the final commit goes through, the journal is removed, exit 0.
    await writeFile(join(dir, "last.txt"), "the last one");
    disk.fill();
    await mounts.unmount(dir);
    expect((await committedBytes(fx.silo, "lfull-free", "last.txt"))?.toString()).toBe("the last one");
    expect(readdirSync(join(disk.dir, "journals")).flatMap((v) => readdirSync(join(disk.dir, "journals", v)))).toEqual(["volume.json"]);
  });

  it("a write into a committed block written in many pieces lands and says so, though the base cannot be copied in", async () => {
    const disk = smallDisk(24 * MiB);
    const vol = await fx.silo.volumes.fromName("lfull-pieces", { createIfMissing: true });
    const base = randomBytes(8 * MiB);
    await vol.batchUpload().putFile(base, "f.bin").commit();
    const dir = join(root, "pieces");
    await mountOn(disk, "lfull-pieces", dir);
    const want = Buffer.from(base);
    const fh = await open(join(dir, "f.bin"), "r+");
    // One piece short of the limit on pieces per block (MAX_EXTENTS, 256), while there is room.
    for (let k = 0; k < 256; k++) {
      want[k * 20_000] = k & 0xff;
      await fh.write(Buffer.from([k & 0xff]), 0, 1, k * 20_000);
    }
    disk.fill();
    // The next piece lands in a page the upper file has: it is written, and the write says so
    // (copying the base in, which needs room, waits for the next write).
    want[2] = 0xee;
    expect((await fh.write(Buffer.from([0xee]), 0, 1, 2)).bytesWritten).toBe(1);
    expect(["ok", "ENOSPC"]).toContain(await errCode(fh.close()));
    disk.free();
    await mounts.unmount(dir);
    expect((await committedBytes(fx.silo, "lfull-pieces", "f.bin"))?.equals(want)).toBe(true);
  });

  it("committed files read through a cold cache while the cache's disk is full: served, without caching", async () => {
    const disk = smallDisk(24 * MiB);
    const vol = await fx.silo.volumes.fromName("lfull-read", { createIfMissing: true });
    const files = new Map([
      ["big.bin", randomBytes(10 * MiB + 123)],
      ["mid.bin", randomBytes(300_000)],
      ["small.txt", Buffer.from("small and inline")],
      // Read while less than a block is free: a cached copy cut short must never be served.
      ["nearly.bin", randomBytes(9 * MiB)],
    ]);
    const batch = vol.batchUpload();
    for (const [p, data] of files) batch.putFile(data, p);
    await batch.commit();
    const dir = join(root, "read");
    await mountOn(disk, "lfull-read", dir);
    const read = async (p: string) => expect((await within(60_000, `read ${p}`, readFile(join(dir, p)))).equals(files.get(p)!), p).toBe(true);
    disk.fill();
    for (const p of ["big.bin", "mid.bin", "small.txt"]) await read(p);
    expect((await status(dir)).cache?.sizeBytes).toBe(0);
    disk.free();
    leaveFree(disk, MiB);
    await read("nearly.bin");
    // Nothing half-kept: blocks go to cache files beside the reads, and one that does not fit is
    // removed, so the cache settles on whole blocks only (a cut copy kept would stay a .tmp).
    const cacheDir = join(disk.dir, "state", "cache");
    await waitFor("the cache's writes settle", () => readdirSync(cacheDir).every((f) => !f.endsWith(".tmp")));
    const blockSizes = new Set([...files.values()].flatMap((d) => [Math.min(d.length, 8 * MiB), d.length % (8 * MiB)]));
    for (const f of readdirSync(cacheDir)) expect(blockSizes, `cache file ${f}`).toContain(statSync(join(cacheDir, f)).size);
    await mounts.unmount(dir);
  });
});

describe("the journal's reserve", () => {
  it("on a disk full to the last byte, rm of a big uncommitted file succeeds and frees its space; writes work again; after kill -9 it stays deleted and every acknowledged file is there", async () => {
    const disk = smallDisk(32 * MiB);
    await fx.silo.volumes.fromName("lfull-reserve", { createIfMissing: true });
    const dir = join(root, "reserve");
    await mountOn(disk, "lfull-reserve", dir);
    const pid = await mounts.daemonPid(dir);
    const acked = new Map<string, Buffer>([
      ["big.bin", randomBytes(12 * MiB)],
      ["keep.bin", randomBytes(300_000)],
    ]);
    for (const [p, data] of acked) expect((await writeOne(join(dir, p), data, true)).codes).toEqual([]);
    const reserves = () => readdirSync(join(disk.dir, "journals"), { recursive: true, encoding: "utf8" }).filter((p) => p.endsWith("/reserve"));
    expect(reserves()).toHaveLength(1);

    // Full to the last byte, the journal's last page too: records (of new directories, which free
    // nothing and so may not use the reserve) go in until one does not fit.
    disk.fill();
    takeLogSlack(disk);
    let pads = 0;
    let code: string;
    while ((code = await errCode(barrier(dir))) === "ok") {
      if (pads > 200) throw new Error("the journal never filled");
      await mkdir(join(dir, `pad${pads++}-${"p".repeat(200)}`));
    }
    expect(code).toBe("ENOSPC");
    expect(statfsSync(disk.dir).bavail).toBe(0);

    // rm of the uncommitted big file: its record takes the reserve, and its local copy goes.
    await rm(join(dir, "big.bin"));
    acked.delete("big.bin");
    await barrier(dir);
    expect(reserves()).toEqual([]);
    const { bavail, bsize } = statfsSync(disk.dir);
    expect(bavail * bsize).toBeGreaterThanOrEqual(12 * MiB);

    // Writes work again, and are acknowledged.
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(2 * MiB + i);
      expect((await writeOne(join(dir, `after${i}`), data, i === 0)).codes).toEqual([]);
      acked.set(`after${i}`, data);
    }

    // kill -9, then recovery by the next mount (the disk is as the daemon left it).
    process.kill(pid, "SIGKILL");
    await waitFor("the daemon is dead", async () => !alive(pid));
    await mountOn(disk, "lfull-reserve", dir);
    expect(await errCode(stat(join(dir, "big.bin")))).toBe("ENOENT");
    for (const [p, data] of acked) expect((await readFile(join(dir, p))).equals(data), `${p} on the mount`).toBe(true);
    await mounts.unmount(dir);
    expect(await committedBytes(fx.silo, "lfull-reserve", "big.bin")).toBe(null);
    for (const [p, data] of acked) expect((await committedBytes(fx.silo, "lfull-reserve", p))?.equals(data), `${p} committed`).toBe(true);
  });

  it("a commit whose journal rewrite fails marks the older records as held: after kill -9 none is replayed over another client's later change", async () => {
    // Room for bytes but few files: the checkpoint's new log cannot be created, appends to the old one still fit.
    const disk = smallDisk(32 * MiB, 400);
    const vol = await fx.silo.volumes.fromName("lfull-acked", { createIfMissing: true });
    const dir = join(root, "acked");
    // No periodic journal append: only what the test does reaches the log.
    await mountOn(disk, "lfull-acked", dir, { SILO_JOURNAL_FLUSH_MS: String(3_600_000) });
    const control = (op: "commit" | "reload") => within(60_000, op, controlRequest(join(disk.dir, "state", "control.sock"), op));
    await writeFile(join(dir, "p.txt"), "mine");
    const { journal } = (await readMountRecord(dir))!;
    expect((await readRecords(journal!)).map((r) => r.path)).toContain("p.txt");
    disk.fillInodes();
    await control("commit");
    expect(await committedText(fx.silo, "lfull-acked", "p.txt")).toBe("mine");
    expect((await status(dir)).lastCommitError).toBe(null);
    // The log was not rewritten (p.txt's record is still in it) but is marked as held by the commit.
    expect(await readFile(join(journal!, "journal.log"), "utf8")).toContain('"path":"p.txt"');
    expect(await readRecords(journal!)).toEqual([]);

    await vol.batchUpload({ force: true }).putFile(Buffer.from("theirs"), "p.txt").commit();
    await control("reload");
    expect(await readFile(join(dir, "p.txt"), "utf8")).toBe("theirs");
    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    disk.free();

    await mountOn(disk, "lfull-acked", dir);
    expect(await readFile(join(dir, "p.txt"), "utf8")).toBe("theirs");
    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "lfull-acked", "p.txt")).toBe("theirs");
  });

  it("a close whose records fit succeeds though the log cannot be compacted (no room for a new one); after kill -9 the write is there", async () => {
    const disk = smallDisk(32 * MiB, 400);
    await fx.silo.volumes.fromName("lfull-compact", { createIfMissing: true });
    const dir = join(root, "compact");
    // Every close is past the compaction threshold; no periodic append.
    await mountOn(disk, "lfull-compact", dir, { SILO_JOURNAL_COMPACT_BYTES: "1", SILO_JOURNAL_FLUSH_MS: String(3_600_000) });
    await writeFile(join(dir, "c.txt"), "one");
    disk.fillInodes();
    // A rewrite in place creates no file: the close's records fit in the log, its new log does not.
    const fh = await open(join(dir, "c.txt"), "r+");
    await fh.write(Buffer.from("two"), 0, 3, 0);
    expect(await errCode(fh.close())).toBe("ok");
    expect((await status(dir)).lastJournalError ?? null).toBe(null);

    process.kill(await mounts.daemonPid(dir), "SIGKILL");
    disk.free();
    await mountOn(disk, "lfull-compact", dir);
    expect(await readFile(join(dir, "c.txt"), "utf8")).toBe("two");
    await mounts.unmount(dir);
    expect(await committedText(fx.silo, "lfull-compact", "c.txt")).toBe("two");
  });

  it("only records that free space use it; a checkpoint with room takes it back", async () => {
    const disk = smallDisk(8 * MiB);
    const state = new Map<string, JournalRecord>();
    const j = await Journal.create(join(disk.dir, "journals", "v"), { server: "http://127.0.0.1:1", volumeId: "vo-x", volume: "x" }, (p) => state.get(p) ?? null);
    try {
      expect(j.reserved).toBe(true);
      expect(statSync(join(j.dir, "reserve")).size).toBe(JOURNAL_RESERVE_BYTES);
      disk.fill();
      // Records until the log's last page is full.
      let code = "ok";
      for (let i = 0; code === "ok"; i++) {
        if (i > 200) throw new Error("the journal never filled");
        const path = `d/${"n".repeat(200)}-${i}`;
        state.set(path, { op: "dir", path, mode: 0o755, mtimeMs: i });
        j.mark(path);
        code = await errCode(j.flush());
      }
      expect(code).toBe("ENOSPC");
      expect(j.reserved).toBe(true);
      // A flush that frees space appends them (and everything marked) into the reserve's room.
      state.set("gone.bin", { op: "gone", path: "gone.bin" });
      j.mark("gone.bin");
      await j.flush(true);
      expect(j.reserved).toBe(false);
      expect(readdirSync(j.dir)).not.toContain("reserve");
      expect((await readRecords(j.dir)).at(-1)).toEqual({ op: "gone", path: "gone.bin" });
      // Later appends that free nothing do not rebuild it; a checkpoint with room does.
      j.mark("gone.bin");
      await j.flush();
      expect(j.reserved).toBe(false);
      disk.free();
      await j.checkpoint([]);
      expect(j.reserved).toBe(true);
      expect(statSync(join(j.dir, "reserve")).size).toBe(JOURNAL_RESERVE_BYTES);
    } finally {
      await j.remove();
    }
  });
});

describe("the journal on a nearly full disk", () => {
  it("a checkpoint that does not fit fails and leaves the old log whole (never a log cut short)", async () => {
    const disk = smallDisk(8 * MiB);
    const state = new Map<string, JournalRecord>();
    const j = await Journal.create(join(disk.dir, "journals", "v"), { server: "http://127.0.0.1:1", volumeId: "vo-x", volume: "x" }, (p) => state.get(p) ?? null);
    try {
      // ~200 KiB of records, appended while there is room.
      for (let i = 0; i < 800; i++) {
        const path = `dir/${"n".repeat(200)}-${i}`;
        state.set(path, { op: "dir", path, mode: 0o755, mtimeMs: i });
        j.mark(path);
      }
      await j.flush();
      const before = await readRecords(j.dir);
      expect(before).toHaveLength(800);
      leaveFree(disk, 64 * 1024);
      expect(await errCode(j.checkpoint(state.keys()))).toBe("ENOSPC");
      expect(await readRecords(j.dir)).toEqual(before);
      expect(readdirSync(j.dir).sort()).toEqual(["journal.log", "owner.json", "reserve", "upper"]);
    } finally {
      await j.remove();
    }
  });
});
