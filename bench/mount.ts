/**
 * `npm run bench:mount`: native disk, bindfs over it and a silo volume mount, in one run on one
 * machine. Sequential write/read of 1 GiB (cold and warm), 4 KiB random reads and writes,
 * create+stat+unlink of 10,000 small files, `tar x` of 20,000 files, `find` over 100,000
 * entries, the latency of committing 1 changed file in a 100,000-file volume, of committing a
 * small file while another is written continuously, and the daemon's RSS with a 1 TiB sparse
 * file (JOURNAL_ONLY=1 runs only those two). Prints
 * silo/native and silo/bindfs ratios (bindfs: scripts/bench-deps.sh). Needs root (drop_caches, FUSE). SIZE_MB=… shrinks the big file.
 * ROWS=random-write runs only the 4 KiB random write row (after writing its file), with what
 * the daemon fetched, CPU-seconds, and the final commit of the written file. ROWS=small runs only
 * the small-file and `tar x` rows, with the CPU-seconds of the file system's process (silo's
 * daemon, bindfs), and per phase the CPU per file and the FUSE requests per file silo served.
 * ROWS=find runs only the `find` row, on FIND_ROUNDS (default 3) fresh mounts, with the
 * daemon's and the server's CPU-seconds, a second `find` on the same mount (every directory
 * loaded: the FUSE path alone) and the FUSE requests the mount served.
 * ROWS=cold-read: a 2 GiB file (SIZE_MB overrides) read sequentially with caches
 * dropped, on a fresh silo mount and on bindfs over the same bytes on local disk, alternated,
 * 3 runs each: median throughput and CPU-seconds per GiB of the daemon, the server and bindfs.
 * ROWS=big seeds a BIG_FILES-file volume (default 1,000,000, in directories of
 * 1,000) through the API and measures its mount, the daemon's RSS after it and after a `find`
 * over it, and the commit of one changed file; PEER_BIN=/path/to/bin/silo.js measures another
 * build's mount of the same volume in the same run (alternated).
 * ROWS=warm-read: the big file committed, then read on a fresh read-only mount: cold (caches
 * dropped), at once again (the first warm read), and 3 more warm reads, each after a native
 * read of the same bytes; with PEER_BIN another build's mount too, alternated (RUNS rounds).
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { controlRequest } from "../client/mount-control.js";
import type { SiloClient } from "../client/index.js";
import type { ManifestEntry } from "../protocol/volume.js";
import { readMountRecord } from "../fuse/common/mount-records.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { BenchSilo } from "./lib/silo-server.js";

const SILO_BIN = resolve(import.meta.dirname, "../../bin/silo.js");
const MiB = 1024 * 1024;
const SIZE = Number(process.env.SIZE_MB ?? 1024) * MiB;
const SMALL_FILES = 10_000;
const RANDOM_READS = 20_000;
const BIG_VOLUME_FILES = 100_000;
const RANDOM_WRITES = 20_000;
const TAR_FILES = 20_000;
/** The seeded 100,000-file volume: 100,000 files in 100 directories. */
const FIND_ENTRIES = 100_000;

const work = mkdtempSync(join(tmpdir(), "silo-bench-mount-"));
let server: BenchSilo | undefined;
const mounted: string[] = [];

function silo(args: string[], env: NodeJS.ProcessEnv, bin = SILO_BIN): string {
  return execFileSync(process.execPath, [bin, ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

const dropCaches = () => {
  execFileSync("sync");
  writeFileSync("/proc/sys/vm/drop_caches", "3");
};

/** Seconds taken by fn. */
function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** `distinct`: every MiB starts with its offset, so no two 8 MiB blocks are equal (the volume dedups equal blocks: one fetch would serve them all). */
function seqWrite(path: string, distinct = false): number {
  const buf = randomBytes(MiB);
  return time(() => {
    const fd = openSync(path, "w");
    for (let off = 0; off < SIZE; off += MiB) {
      if (distinct) buf.writeUIntLE(off, 0, 6);
      writeSync(fd, buf, 0, MiB, off);
    }
    fsyncSync(fd);
    closeSync(fd);
  });
}

function seqRead(path: string): number {
  const buf = Buffer.allocUnsafe(MiB);
  return time(() => {
    const fd = openSync(path, "r");
    let off = 0;
    for (let n: number; (n = readSync(fd, buf, 0, MiB, off)) > 0; ) off += n;
    closeSync(fd);
  });
}

/** Best of 3 sequential reads of `nativePath` and `siloPath`, interleaved, with the daemon's CPU-s over the 3 silo reads. */
function seqReadsBestOf3(nativePath: string, siloPath: string, daemon: number): { native: number; silo: number; cpu: number } {
  let native = Infinity, silo = Infinity, cpu = 0;
  for (let i = 0; i < 3; i++) {
    native = Math.min(native, seqRead(nativePath));
    const s = withCpu(daemon, () => seqRead(siloPath));
    silo = Math.min(silo, s.value);
    cpu += s.cpu ?? 0;
  }
  return { native, silo, cpu };
}

function randomReads(path: string): number {
  const buf = Buffer.allocUnsafe(4096);
  const blocks = SIZE / 4096;
  return time(() => {
    const fd = openSync(path, "r");
    for (let i = 0; i < RANDOM_READS; i++) readSync(fd, buf, 0, 4096, Math.floor(Math.random() * blocks) * 4096);
    closeSync(fd);
  });
}

type SmallPhase = "create" | "stat" | "unlink";

/** The small-file loops in order, each returning its rate (files/s) when run. */
function smallFilePhases(dir: string): Array<[SmallPhase, () => number]> {
  mkdirSync(join(dir, "small"), { recursive: true });
  const data = Buffer.alloc(100, 1);
  const names = Array.from({ length: SMALL_FILES }, (_, i) => join(dir, "small", `f${i}`));
  const rate = (f: () => void) => () => SMALL_FILES / time(f);
  return [
    ["create", rate(() => names.forEach((n) => writeFileSync(n, data)))],
    ["stat", rate(() => names.forEach((n) => statSync(n)))],
    ["unlink", rate(() => names.forEach((n) => unlinkSync(n)))],
  ];
}

function smallFiles(dir: string): Record<SmallPhase, number> {
  return Object.fromEntries(smallFilePhases(dir).map(([phase, run]) => [phase, run()])) as Record<SmallPhase, number>;
}

function mount(env: NodeJS.ProcessEnv, volume: string, dir: string, ...flags: string[]): void {
  mountWith(SILO_BIN, env, volume, dir, ...flags);
}
function mountWith(bin: string, env: NodeJS.ProcessEnv, volume: string, dir: string, ...flags: string[]): void {
  silo(["volume", "mount", volume, dir, "--commit-interval-ms", "0", ...flags], env, bin);
  mounted.push(dir);
}
function unmount(env: NodeJS.ProcessEnv, dir: string, bin = SILO_BIN): number {
  const t = time(() => silo(["volume", "unmount", dir], env, bin));
  mounted.splice(mounted.indexOf(dir), 1);
  return t;
}

/** Seeds a volume with many empty files straight through the API (creating them through a mount would dominate the run). */
async function seedVolume(client: SiloClient, name: string, files: number): Promise<void> {
  const vol = await client.volumes.fromName(name, { createIfMissing: true, inodeLimit: Math.max(500_000, files * 2) });
  const now = Date.now();
  for (let start = 0; start < files; start += 10_000) {
    const changes = [];
    for (let i = start; i < Math.min(files, start + 10_000); i++) {
      const entry: ManifestEntry = { path: `d${Math.floor(i / 1000)}/f${i}`, type: "file", mode: 0o644, size: 0, mtimeMs: now, blocks: [] };
      changes.push({ op: "put" as const, entry });
    }
    await vol.blocks.commitChanges({ baseVersion: await vol.blocks.latestVersion(), changes });
  }
}

const rate = (seconds: number) => SIZE / MiB / seconds;
type Cols = { native: number; bindfs?: number; silo: number };
const rows: Array<[string, Cols, string]> = [];
const fmt = (v: number | undefined, unit: string) => `${v === undefined ? "-".padStart(10) : v.toFixed(1).padStart(10)} ${unit.padEnd(8)}`;
const row = (what: string, c: Cols, unit: string) => {
  rows.push([what, c, unit]);
  const vsBindfs = c.bindfs ? ` silo/bindfs ${(c.silo / c.bindfs).toFixed(2)}` : "";
  console.log(`${what.padEnd(34)} native ${fmt(c.native, unit)} bindfs ${fmt(c.bindfs, unit)} silo ${fmt(c.silo, unit)} silo/native ${(c.silo / c.native).toFixed(2)}${vsBindfs}`);
};

/** bindfs (Debian, a C libfuse passthrough) over `src` at `dir`: the ceiling for a libfuse-based file system here. */
/**
 * bindfs over `src` at `dir`. With `-o kernel_cache` the kernel keeps its page cache across
 * opens, as silo does for committed files, so a warm read never reaches the file system: what
 * FUSE's own page cache gives, the ceiling of a warm read that is not passthrough.
 */
function bindfsMount(src: string, dir: string, options: string[] = []): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("bindfs", ["--no-allow-other", ...options, src, dir], { stdio: "ignore" });
    mounted.push(dir);
    return true;
  } catch {
    return false;
  }
}
/** CPU-seconds for a report line ("-" when not measured). */
const cpu = (x?: number) => (x === undefined ? "-" : `${x.toFixed(2)} CPU-s`);

function bindfsUnmount(dir: string): void {
  execFileSync("umount", [dir]);
  mounted.splice(mounted.indexOf(dir), 1);
}

function randomWrites(path: string): number {
  const buf = randomBytes(4096);
  const blocks = SIZE / 4096;
  return time(() => {
    const fd = openSync(path, "r+");
    for (let i = 0; i < RANDOM_WRITES; i++) writeSync(fd, buf, 0, 4096, Math.floor(Math.random() * blocks) * 4096);
    closeSync(fd);
  });
}

/** A tar archive of TAR_FILES small files in 100 directories, made once on native disk. */
function makeTarball(): string {
  const src = join(work, "tar-src");
  for (let d = 0; d < 100; d++) {
    mkdirSync(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < TAR_FILES / 100; f++) writeFileSync(join(src, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(1 + (f % 20)));
  }
  const tarball = join(work, "tree.tar");
  execFileSync("tar", ["cf", tarball, "-C", src, "."]);
  rmSync(src, { recursive: true, force: true });
  return tarball;
}
const tarX = (tarball: string, dir: string) => {
  mkdirSync(join(dir, "tree"), { recursive: true });
  return TAR_FILES / time(() => execFileSync("tar", ["xf", tarball, "-C", join(dir, "tree")]));
};
const find = (dir: string) => FIND_ENTRIES / time(() => execFileSync("find", [dir], { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 30 }));

/**
 * find over a 100,000-entry tree: natively and on bindfs a tree made here (100 directories of
 * 999 empty files), on silo the seeded volume. Returns the native tree (copied under `bindSrc`).
 */
function makeFindTree(native: string, bindSrc: string | undefined): string {
  const findDir = join(native, "find");
  for (let d = 0; d < FIND_ENTRIES / 1000; d++) {
    mkdirSync(join(findDir, `d${d}`), { recursive: true });
    for (let f = 0; f < 999; f++) writeFileSync(join(findDir, `d${d}`, `f${f}`), "");
  }
  if (bindSrc) execFileSync("cp", ["-a", findDir, join(bindSrc, "find")]);
  return findDir;
}

/** The bindfs process serving `dir` (it daemonizes, so it is found by its command line). */
function bindfsPid(dir: string): number | undefined {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[0]?.endsWith("bindfs") && argv.includes(dir)) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** fn's result and the CPU-seconds `pid` spent meanwhile. */
function withCpu<T>(pid: number | undefined, fn: () => T): { value: T; cpu?: number } {
  const before = pid === undefined ? 0 : cpuSecondsOf(pid);
  const value = fn();
  return { value, cpu: pid === undefined ? undefined : cpuSecondsOf(pid) - before };
}

/**
 * The three places a run compares, under `work`: a native ext4 directory, bindfs over another
 * one (`haveBindfs` false when bindfs is not installed), and the silo mount point.
 */
function peerDirs(): { native: string; bindSrc: string; bind: string; haveBindfs: boolean; mnt: string } {
  const native = join(work, "native");
  mkdirSync(native);
  const bindSrc = join(work, "bind-src");
  mkdirSync(bindSrc);
  const bind = join(work, "bind");
  const haveBindfs = bindfsMount(bindSrc, bind);
  if (!haveBindfs) console.log("bindfs is not installed (scripts/bench-deps.sh): its column stays empty");
  return { native, bindSrc, bind, haveBindfs, mnt: join(work, "mnt") };
}

/** ROWS=warm-read (see the top): MiB/s of each read, the daemon's CPU-s, and the opens passed through on a whole-file copy. */
async function warmReadOnly(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  await client.volumes.fromName("bench", { createIfMissing: true });
  const { native, bind, haveBindfs, mnt } = peerDirs();
  const mibs = (s: number) => Math.round(SIZE / MiB / s);
  seqWrite(join(native, "big"));
  mount(env, "bench", mnt);
  seqWrite(join(mnt, "big"));
  unmount(env, mnt);
  const builds: Array<[string, string]> = [["silo", SILO_BIN]];
  if (process.env.PEER_BIN) builds.push(["peer", process.env.PEER_BIN]);
  console.log(`seq read of ${SIZE / MiB} MiB (MiB/s; daemon CPU-s in brackets)`);
  for (let round = 0; round < Number(process.env.RUNS ?? 2); round++) {
    for (const [name, bin] of round % 2 ? [...builds].reverse() : builds) {
      mountWith(bin, env, "bench", mnt, "--read-only");
      const daemon = (await readMountRecord(mnt))!.pid;
      dropCaches();
      const nativeCold = seqRead(join(native, "big"));
      dropCaches();
      const cold = withCpu(daemon, () => seqRead(join(mnt, "big")));
      const first = withCpu(daemon, () => seqRead(join(mnt, "big")));
      const { native: nativeWarm, silo: warm, cpu } = seqReadsBestOf3(join(native, "big"), join(mnt, "big"), daemon);
      // The whole-file copy read natively (ext4 without FUSE): what passthrough itself costs on it.
      const wholeDir = join(stateDirFor(mnt), "whole");
      const copies = existsSync(wholeDir) ? readdirSync(wholeDir, { withFileTypes: true }).filter((e) => !e.name.endsWith(".tmp")) : [];
      const copy = copies.length === 1 ? seqReadsBestOf3(join(copies[0]!.parentPath, copies[0]!.name), join(mnt, "big"), daemon) : undefined;
      const st = (await controlRequest(join(stateDirFor(mnt), "control.sock"), "status")) as {
        passthrough?: { wholeFile?: number };
        wholeFiles?: { buildMs: number; built: number; failed: number } | null;
        cacheBytes: number;
      };
      console.log(
        `${name}: cold ${mibs(cold.value)} [${cold.cpu?.toFixed(2)}] vs native ${mibs(nativeCold)} (${(nativeCold / cold.value).toFixed(2)}); ` +
          `first warm ${mibs(first.value)} [${first.cpu?.toFixed(2)}]; warm best of 3 ${mibs(warm)} [${(cpu / 3).toFixed(2)}] vs native ${mibs(nativeWarm)} ` +
          `(${(nativeWarm / warm).toFixed(2)}); whole-file passthrough opens ${st.passthrough?.wholeFile ?? "n/a"}` +
          (st.wholeFiles ? ` (${st.wholeFiles.built} copy made in ${st.wholeFiles.buildMs.toFixed(0)} ms, ${st.wholeFiles.failed} failed; ${(st.cacheBytes / MiB).toFixed(0)} MiB of blocks cached)` : "") +
          (copy ? `; then the copy natively ${mibs(copy.native)} vs through the mount ${mibs(copy.silo)} (${(copy.native / copy.silo).toFixed(2)})` : ""),
      );
      unmount(env, mnt, bin);
    }
  }
  if (haveBindfs) bindfsUnmount(bind);
}

/**
 * ROWS=small: create/stat/unlink of 10,000 files and `tar x` of 20,000 files, natively, on
 * bindfs and on a fresh volume mount, with the CPU-seconds the file system's process used for
 * each (silo's daemon, bindfs; the native column's work is in the kernel, in this process).
 */
async function smallOnly(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  await client.volumes.fromName("small", { createIfMissing: true });
  const { native, bind, haveBindfs, mnt } = peerDirs();
  const bindPid = haveBindfs ? bindfsPid(bind) : undefined;
  mount(env, "small", mnt);
  const daemon = (await readMountRecord(mnt))!.pid;
  const socket = join(stateDirFor(mnt), "control.sock");
  const requests = async () => (await controlRequest<{ fuseRequests: Record<string, number> }>(socket, "status")).fuseRequests;
  const tarball = makeTarball();
  const n = smallFiles(native);
  const bf = haveBindfs ? await measuredPhases(smallFilePhases(bind), bindPid) : undefined;
  const s = await measuredPhases(smallFilePhases(mnt), daemon, requests);
  const nt = tarX(tarball, native);
  const bt = haveBindfs ? withCpu(bindPid, () => tarX(tarball, bind)) : undefined;
  const [st] = await measuredPhases([["tar x", () => tarX(tarball, mnt)]], daemon, requests);
  for (const phase of ["create", "stat", "unlink"] as const) row(`small files: ${phase} (files/s)`, { native: n[phase], bindfs: bf?.find((m) => m.phase === phase)?.rate, silo: s.find((m) => m.phase === phase)!.rate }, "files/s");
  row(`tar x of ${TAR_FILES} files (files/s)`, { native: nt, bindfs: bt?.value, silo: st!.rate }, "files/s");
  const sum = (ms?: Measured[]) => ms?.reduce((t, m) => t + (m.cpu ?? 0), 0);
  console.log(`file system process CPU, create+stat+unlink: bindfs ${cpu(sum(bf))}, silo daemon ${cpu(sum(s))}; tar x: bindfs ${cpu(bt?.cpu)}, silo daemon ${cpu(st!.cpu)}`);
  // Per file: what each phase cost the file system's process, and the requests silo's daemon got.
  const us = (x: number | undefined, files: number) => (x === undefined ? "-" : `${((x / files) * 1e6).toFixed(0)} µs`);
  for (const m of [...s, st!]) {
    const files = m.phase === "tar x" ? TAR_FILES : SMALL_FILES;
    const peer = m.phase === "tar x" ? bt?.cpu : bf?.find((b) => b.phase === m.phase)?.cpu;
    const per = Object.entries(m.requests ?? {})
      .filter(([, k]) => k >= files / 100)
      .map(([op, k]) => `${op} ${(k / files).toFixed(2)}`)
      .join(", ");
    console.log(`  ${m.phase} per file: CPU bindfs ${us(peer, files)}, silo daemon ${us(m.cpu, files)}; silo requests ${per}`);
  }
  unmount(env, mnt);
  if (haveBindfs) bindfsUnmount(bind);
}

interface Measured {
  phase: string;
  rate: number;
  /** CPU-seconds of the serving process in the phase. */
  cpu?: number;
  /** FUSE requests it served in the phase, by opcode (silo). */
  requests?: Record<string, number>;
}

/** Runs the phases one by one, each with the CPU-seconds of `pid` and (given `requests`) the FUSE requests served meanwhile. */
async function measuredPhases(phases: Array<[string, () => number]>, pid: number | undefined, requests?: () => Promise<Record<string, number>>): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const [phase, run] of phases) {
    const before = await requests?.();
    const { value, cpu } = withCpu(pid, run);
    const after = await requests?.();
    const served = before && after ? Object.fromEntries(Object.entries(after).map(([op, k]) => [op, k - (before[op] ?? 0)])) : undefined;
    out.push({ phase, rate: value, cpu, requests: served });
  }
  return out;
}

/**
 * ROWS=find: `find` over the 100,000-entry tree natively, on bindfs and on the seeded volume,
 * FIND_ROUNDS times (default 3), each round on a fresh silo mount with the page cache and
 * dentries dropped before each `find`, with the CPU-seconds of the file system's process.
 */
async function findOnly(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  const { native, bindSrc, bind, haveBindfs } = peerDirs();
  const bindPid = haveBindfs ? bindfsPid(bind) : undefined;
  const findDir = makeFindTree(native, haveBindfs ? bindSrc : undefined);
  await seedVolume(client, "many", BIG_VOLUME_FILES);
  const manyDir = join(work, "many");
  const rounds = Number(process.env.FIND_ROUNDS ?? 3);
  console.log(`silo mount benchmark, one row: find over ${FIND_ENTRIES} entries, ${rounds} rounds, each on a fresh mount\n`);
  for (let i = 0; i < rounds; i++) {
    const loadSeconds = time(() => mount(env, "many", manyDir));
    const daemon = (await readMountRecord(manyDir))!.pid;
    dropCaches();
    const n = find(findDir);
    dropCaches();
    const bf = haveBindfs ? withCpu(bindPid, () => find(join(bind, "find"))) : undefined;
    dropCaches();
    const serverBefore = server!.cpuSeconds();
    const [ranBefore, waitedBefore] = schedSeconds(daemon);
    const t0 = process.hrtime.bigint();
    const s = withCpu(daemon, () => find(manyDir));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const [ranAfter, waitedAfter] = schedSeconds(daemon);
    const [ran, waited] = [ranAfter - ranBefore, waitedAfter - waitedBefore];
    const serverCpu = server!.cpuSeconds() - serverBefore;
    row(`find over ${FIND_ENTRIES} entries (entries/s)`, { native: n, bindfs: bf?.value, silo: s.value }, "entries/s");
    console.log(`  file system process CPU: bindfs ${cpu(bf?.cpu)}, silo daemon ${cpu(s.cpu)}, silo server ${cpu(serverCpu)}; silo mount (tree load) ${loadSeconds.toFixed(2)} s; load average ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`);
    // What the walk left the daemon holding, and how its loads went (status: lazy-load.ts, tree-cache.ts).
    const st = await controlRequest<{ cachedInodesPeak?: number; rereadDirs?: number; readAhead?: { dirs: number } }>(join(stateDirFor(manyDir), "control.sock"), "status");
    // The daemon's main thread over the walk: running, runnable but waiting for a core, or idle (waiting for the kernel's requests or the server's answers).
    console.log(`  silo daemon main thread over the find's ${wall.toFixed(2)} s: ran ${ran.toFixed(2)} s, waited for a core ${waited.toFixed(2)} s, idle ${Math.max(0, wall - ran - waited).toFixed(2)} s`);
    console.log(`  silo daemon RSS after the find ${rssMiB(daemon).toFixed(0)} MiB; entries held at most ${st.cachedInodesPeak ?? "?"}, directories read ahead ${st.readAhead?.dirs ?? "?"}, read again ${st.rereadDirs ?? "?"}`);
    // The same walk again, every directory loaded: what the FUSE path costs without the loads.
    dropCaches();
    const again = withCpu(daemon, () => find(manyDir));
    console.log(`  again on the same mount (all loaded): silo ${again.value.toFixed(0)} entries/s, daemon ${cpu(again.cpu)}`);
    // The mount's status counts the FUSE requests it served, as the small-file rows read them.
    const { fuseRequests } = await controlRequest<{ fuseRequests: Record<string, number> }>(join(stateDirFor(manyDir), "control.sock"), "status");
    unmount(env, manyDir);
    console.log(`  FUSE requests of the mount (both finds): ${Object.entries(fuseRequests).map(([op, k]) => `${op} ${k}`).join(", ")}`);
  }
  if (haveBindfs) bindfsUnmount(bind);
}

async function main(): Promise<void> {
  server = await BenchSilo.start();
  const env = server.env;
  const client = server.client();
  if (process.env.ROWS === "random-write") {
    await randomWriteOnly(env, client);
    await client.close();
    return;
  }
  if (process.env.ROWS === "find") {
    await findOnly(env, client);
    await client.close();
    return;
  }
  if (process.env.ROWS === "cold-read") {
    await coldReadOnly(env, client);
    await client.close();
    return;
  }
  if (process.env.ROWS === "warm-read") {
    await warmReadOnly(env, client);
    await client.close();
    return;
  }
  if (process.env.ROWS === "big") {
    await bigVolume(env, client);
    await client.close();
    return;
  }
  if (process.env.ROWS === "small") {
    await smallOnly(env, client);
    await client.close();
    return;
  }
  // JOURNAL_ONLY=1: only the commit-under-a-writer and sparse-file rows.
  if (process.env.JOURNAL_ONLY) {
    await commitUnderWriter(env, client);
    await sparseRss(env, client);
    await client.close();
    return;
  }
  await client.volumes.fromName("bench", { createIfMissing: true });
  const { native, bindSrc, bind, haveBindfs, mnt } = peerDirs();
  const b = <T>(fn: () => T): T | undefined => (haveBindfs ? fn() : undefined);
  console.log(`silo mount benchmark: ${SIZE / MiB} MiB file, ${SMALL_FILES} small files, ${RANDOM_READS} random 4 KiB reads\n`);

  // Sequential write (data reaches the disk: fsync natively and on bindfs, the commit on silo is reported apart).
  mount(env, "bench", mnt);
  row("seq write 1M (MiB/s)", { native: rate(seqWrite(join(native, "big"))), bindfs: b(() => rate(seqWrite(join(bind, "big")))), silo: rate(seqWrite(join(mnt, "big"))) }, "MiB/s");
  // Warm read of the file just written, on the same mount: its bytes are all in its upper file,
  // so a read-only open is passthrough (the kernel reads the upper file; SILO_FUSE_PASSTHROUGH=off
  // for the daemon's own path). Best of 3, interleaved, with the daemon's CPU-seconds.
  {
    const daemon = (await readMountRecord(mnt))!.pid;
    const { native: nativeLocal, silo: siloLocal, cpu: siloCpu } = seqReadsBestOf3(join(native, "big"), join(mnt, "big"), daemon);
    row("seq read warm, written here (MiB/s)", { native: rate(nativeLocal), silo: rate(siloLocal) }, "MiB/s");
    const status = (await controlRequest(join(stateDirFor(mnt), "control.sock"), "status")) as { passthrough?: { reads: number } };
    console.log(`  (silo daemon ${(siloCpu / 3).toFixed(2)} CPU-s per read of ${SIZE / MiB} MiB; passthrough opens ${status.passthrough?.reads ?? "n/a"})`);
  }
  const commitSeconds = unmount(env, mnt);
  console.log(`  (silo: unmount with the final commit of ${SIZE / MiB} MiB took ${commitSeconds.toFixed(2)} s)`);

  // Cold read: page cache dropped; silo on a fresh mount, so every block comes from the server.
  mount(env, "bench", mnt, "--read-only");
  dropCaches();
  const nativeCold = seqRead(join(native, "big"));
  dropCaches();
  const bindCold = b(() => seqRead(join(bind, "big")));
  dropCaches();
  const siloCold = seqRead(join(mnt, "big"));
  // Warm figures: the files are in the page cache now; best of 3, interleaved, as the 2-core
  // machine is shared and a single run is noisy.
  const bindKc = join(work, "bind-kc");
  const haveBindKc = haveBindfs && bindfsMount(bindSrc, bindKc, ["-o", "kernel_cache"]);
  if (haveBindKc) seqRead(join(bindKc, "big"));
  let nativeWarm = Infinity, siloWarm = Infinity, bindWarm = Infinity, bindKcWarm = Infinity, nativeRandom = Infinity, siloRandom = Infinity, bindRandom = Infinity;
  for (let i = 0; i < 3; i++) {
    nativeWarm = Math.min(nativeWarm, seqRead(join(native, "big")));
    siloWarm = Math.min(siloWarm, seqRead(join(mnt, "big")));
    if (haveBindfs) bindWarm = Math.min(bindWarm, seqRead(join(bind, "big")));
    if (haveBindKc) bindKcWarm = Math.min(bindKcWarm, seqRead(join(bindKc, "big")));
    nativeRandom = Math.min(nativeRandom, randomReads(join(native, "big")));
    siloRandom = Math.min(siloRandom, randomReads(join(mnt, "big")));
    if (haveBindfs) bindRandom = Math.min(bindRandom, randomReads(join(bind, "big")));
  }
  row("seq read cold (MiB/s)", { native: rate(nativeCold), bindfs: bindCold && rate(bindCold), silo: rate(siloCold) }, "MiB/s");
  row("seq read warm (MiB/s)", { native: rate(nativeWarm), bindfs: b(() => rate(bindWarm)), silo: rate(siloWarm) }, "MiB/s");
  if (haveBindKc) {
    bindfsUnmount(bindKc);
    console.log(`  (bindfs -o kernel_cache, FUSE's page cache without passthrough: ${rate(bindKcWarm).toFixed(1)} MiB/s, ${(nativeWarm / bindKcWarm).toFixed(2)} of native; silo/it ${(bindKcWarm / siloWarm).toFixed(2)})`);
  }
  row("4k random read warm (IOPS)", { native: RANDOM_READS / nativeRandom, bindfs: b(() => RANDOM_READS / bindRandom), silo: RANDOM_READS / siloRandom }, "IOPS");
  // Random reads on a fresh mount with cold caches: each touches an uncached 8 MiB block at first.
  unmount(env, mnt);
  mount(env, "bench", mnt, "--read-only");
  dropCaches();
  const nativeRandomCold = randomReads(join(native, "big"));
  dropCaches();
  const bindRandomCold = b(() => randomReads(join(bind, "big")));
  dropCaches();
  row("4k random read cold (IOPS)", { native: RANDOM_READS / nativeRandomCold, bindfs: bindRandomCold && RANDOM_READS / bindRandomCold, silo: RANDOM_READS / randomReads(join(mnt, "big")) }, "IOPS");
  unmount(env, mnt);

  // Random 4 KiB writes into the existing 1 GiB file (no fsync: page cache and FUSE round trips).
  mount(env, "bench", mnt);
  row("4k random write (IOPS)", { native: RANDOM_WRITES / randomWrites(join(native, "big")), bindfs: b(() => RANDOM_WRITES / randomWrites(join(bind, "big"))), silo: RANDOM_WRITES / randomWrites(join(mnt, "big")) }, "IOPS");

  const n = smallFiles(native);
  const bf = b(() => smallFiles(bind));
  const s = smallFiles(mnt);
  row("small files: create (files/s)", { native: n.create, bindfs: bf?.create, silo: s.create }, "files/s");
  row("small files: stat (files/s)", { native: n.stat, bindfs: bf?.stat, silo: s.stat }, "files/s");
  row("small files: unlink (files/s)", { native: n.unlink, bindfs: bf?.unlink, silo: s.unlink }, "files/s");

  const tarball = makeTarball();
  row(`tar x of ${TAR_FILES} files (files/s)`, { native: tarX(tarball, native), bindfs: b(() => tarX(tarball, bind)), silo: tarX(tarball, mnt) }, "files/s");
  unmount(env, mnt);

  const findDir = makeFindTree(native, haveBindfs ? bindSrc : undefined);

  // Commit latency of one changed file in a 100,000-file volume. A new client: the rows above
  // block this event loop for longer than the server keeps an idle connection open (72 s), and
  // a POST on a connection closed meanwhile is not sent again (client/transport.ts).
  await seedVolume(server.client(), "many", BIG_VOLUME_FILES);
  const manyDir = join(work, "many");
  const loadSeconds = time(() => mount(env, "many", manyDir));
  dropCaches();
  row(`find over ${FIND_ENTRIES} entries (entries/s)`, { native: find(findDir), bindfs: b(() => find(join(bind, "find"))), silo: find(manyDir) }, "entries/s");
  const socket = join(stateDirFor(manyDir), "control.sock");
  const samples: number[] = [];
  for (let i = 0; i < 7; i++) {
    writeFileSync(join(manyDir, `d${i}`, `f${i * 1000 + 1}`), `change ${i}`);
    const t = process.hrtime.bigint();
    await controlRequest(socket, "commit");
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  samples.sort((a, b) => a - b);
  console.log(`\nmount of a ${BIG_VOLUME_FILES}-file volume (tree load): ${loadSeconds.toFixed(2)} s`);
  console.log(`commit of 1 changed file in a ${BIG_VOLUME_FILES}-file volume: median ${samples[3]!.toFixed(1)} ms (min ${samples[0]!.toFixed(1)}, max ${samples[6]!.toFixed(1)}; target < 100 ms)`);
  unmount(env, manyDir);
  if (haveBindfs) bindfsUnmount(bind);

  await commitUnderWriter(env, client);
  await sparseRss(env, client);
  await client.close();
}

/**
 * ROWS=big: a BIG_FILES-file volume seeded through the API; mount time, daemon RSS after the
 * mount and after a `find` over everything, CPU-seconds of each, and the commit of one changed
 * file. With PEER_BIN, the peer build's mount time and RSS of the same volume, alternated.
 */
async function bigVolume(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  const files = Number(process.env.BIG_FILES ?? 1_000_000);
  const t0 = process.hrtime.bigint();
  await seedVolume(client, "big", files);
  console.log(`seeded ${files} files in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
  const dir = join(work, "big");
  const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
  const pidOf = async () => (await readMountRecord(dir))!.pid;
  const builds: Array<[string, string]> = [["this build", SILO_BIN]];
  if (process.env.PEER_BIN) builds.push(["peer", process.env.PEER_BIN]);
  for (let round = 0; round < Number(process.env.RUNS ?? 2); round++) {
    for (const [name, bin] of round % 2 ? [...builds].reverse() : builds) {
      let seconds: number;
      try {
        seconds = time(() => mountWith(bin, env, "big", dir));
      } catch (err) {
        // The CLI gives a daemon 30 s to become ready: a whole-tree load may take longer.
        console.log(`${name}: mount failed (${(err as Error).message.split("\n")[0]})`);
        continue;
      }
      const pid = await pidOf();
      console.log(`${name}: mount ${seconds.toFixed(2)} s, daemon RSS ${rssOf(pid).toFixed(0)} MiB, ${cpuSecondsOf(pid).toFixed(2)} CPU-s`);
      unmount(env, dir, bin);
    }
  }
  mount(env, "big", dir);
  const pid = await pidOf();
  const socket = join(stateDirFor(dir), "control.sock");
  /** Commit of one changed file, median of 7 (`when`: what the mount has read by then). */
  const commits = async (when: string, round: number) => {
    const samples: number[] = [];
    for (let i = 0; i < 7; i++) {
      writeFileSync(join(dir, `d${i}`, `f${i * 1000 + 1}`), `change ${round} ${i}`);
      const t = process.hrtime.bigint();
      await controlRequest(socket, "commit");
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    samples.sort((a, b) => a - b);
    console.log(`commit of 1 changed file in a ${files}-file volume, ${when}: median ${samples[3]!.toFixed(1)} ms (min ${samples[0]!.toFixed(1)}, max ${samples[6]!.toFixed(1)})`);
  };
  await commits("7 directories read", 0);
  const cpuBefore = cpuSecondsOf(pid);
  const findSeconds = time(() => execFileSync("find", [dir], { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 30 }));
  console.log(`find over ${files} files: ${findSeconds.toFixed(1)} s (${(files / findSeconds).toFixed(0)} entries/s), daemon RSS after ${rssOf(pid).toFixed(0)} MiB, ${(cpuSecondsOf(pid) - cpuBefore).toFixed(1)} CPU-s`);
  // What the daemon holds after the walk (the inode cache: SILO_INODE_CACHE).
  const st = (await controlRequest(socket, "status")) as { loadedDirs?: number; cachedInodes?: number; cachedInodesPeak?: number; inodeCacheLimit?: number; unloadedDirs?: number; rereadDirs?: number; kernelInodes?: number; heapUsedBytes?: number; readAhead?: { dirs: number } };
  if (st.cachedInodes !== undefined) console.log(`after the find: ${st.cachedInodes} entries held (at most ${st.cachedInodesPeak ?? "?"}) of a ${st.inodeCacheLimit} cache, ${st.loadedDirs} directories read, ${st.unloadedDirs} unloaded, ${st.rereadDirs ?? "?"} read again, ${st.readAhead?.dirs ?? "?"} read ahead, ${st.kernelInodes} inode numbers the kernel holds, heap in use ${((st.heapUsedBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`);
  await commits("after the find read everything", 1);
  console.log(`daemon RSS after those commits: ${rssOf(pid).toFixed(0)} MiB`);
  unmount(env, dir);
}

/** Seconds the main thread of a process has run, and spent runnable waiting for a core (/proc/PID/schedstat). */
function schedSeconds(pid: number): [number, number] {
  const [ran, waited] = readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ");
  return [Number(ran) / 1e9, Number(waited) / 1e9];
}

/** A process's resident memory now, in MiB. */
function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * ROWS=random-write: the 1 GiB file is written natively, on bindfs and through a silo mount
 * (committed at its unmount); then RANDOM_WRITES random 4 KiB writes into it on each, on a fresh
 * silo mount (its cache empty: every block the writes needed would be fetched). Besides the row:
 * bytes the daemon fetched during the writes, daemon + server CPU-seconds of the writes, and the
 * final commit of the written file (its time, CPU-seconds and the bytes it fetched).
 */
async function randomWriteOnly(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  await client.volumes.fromName("bench", { createIfMissing: true });
  const { native, bind, haveBindfs, mnt } = peerDirs();
  mount(env, "bench", mnt);
  seqWrite(join(native, "big"), true);
  if (haveBindfs) seqWrite(join(bind, "big"), true);
  seqWrite(join(mnt, "big"), true);
  unmount(env, mnt);
  console.log(`silo mount benchmark, one row: ${RANDOM_WRITES} random 4 KiB writes into a committed ${SIZE / MiB} MiB file\n`);
  mount(env, "bench", mnt);
  const socket = join(stateDirFor(mnt), "control.sock");
  const pid = (await readMountRecord(mnt))!.pid;
  const nativeSeconds = randomWrites(join(native, "big"));
  const bindSeconds = haveBindfs ? randomWrites(join(bind, "big")) : undefined;
  const cpu0 = cpuSecondsOf(pid) + server!.cpuSeconds();
  const siloSeconds = randomWrites(join(mnt, "big"));
  const cpu = cpuSecondsOf(pid) + server!.cpuSeconds() - cpu0;
  const status = await controlRequest<{ cache: { bytesFetched: number; misses: number } }>(socket, "status");
  row("4k random write (IOPS)", { native: RANDOM_WRITES / nativeSeconds, bindfs: bindSeconds && RANDOM_WRITES / bindSeconds, silo: RANDOM_WRITES / siloSeconds }, "IOPS");
  // The final commit through the control socket, so the daemon is still there to count its CPU.
  const daemonCpu0 = cpuSecondsOf(pid);
  const serverCpu0 = server!.cpuSeconds();
  const t = process.hrtime.bigint();
  await controlRequest(socket, "commit");
  const commitSeconds = Number(process.hrtime.bigint() - t) / 1e9;
  const daemonCpu = cpuSecondsOf(pid) - daemonCpu0;
  const serverCpu = server!.cpuSeconds() - serverCpu0;
  const after = await controlRequest<{ cache: { bytesFetched: number } }>(socket, "status");
  unmount(env, mnt);
  console.log(`  (silo: the daemon fetched ${status.cache.bytesFetched} bytes in ${status.cache.misses} block reads during the writes; daemon + server used ${cpu.toFixed(2)} CPU-s for them)`);
  console.log(
    `  (silo: the final commit took ${commitSeconds.toFixed(2)} s and ${(daemonCpu + serverCpu).toFixed(2)} CPU-s (daemon ${daemonCpu.toFixed(2)}, server ${serverCpu.toFixed(2)}), fetching ${after.cache.bytesFetched - status.cache.bytesFetched} bytes)`,
  );
  if (haveBindfs) bindfsUnmount(bind);
}

/**
 * ROWS=cold-read: the file is written once on local disk (under bindfs's source) and copied into
 * the volume (committed at unmount). Then 3 rounds, the order alternating: bindfs reads it with
 * the page cache dropped; a fresh read-only silo mount (empty block cache) reads it with the page
 * cache dropped. Medians of throughput and of CPU-seconds per GiB of each process serving it.
 */
async function coldReadOnly(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  const size = Number(process.env.SIZE_MB ?? 2048) * MiB;
  await client.volumes.fromName("cold", { createIfMissing: true });
  const { bindSrc, bind, haveBindfs, mnt } = peerDirs();
  const src = join(bindSrc, "big");
  const buf = randomBytes(MiB);
  const fd = openSync(src, "w");
  // Every MiB starts with its offset: no two blocks are equal (the volume would fetch equal blocks once).
  for (let off = 0; off < size; off += MiB) {
    buf.writeUIntLE(off, 0, 6);
    writeSync(fd, buf, 0, MiB, off);
  }
  closeSync(fd);
  mount(env, "cold", mnt);
  execFileSync("cp", [src, join(mnt, "big")]);
  unmount(env, mnt);
  const GiB = size / (1024 * MiB);
  const read = (path: string) => {
    const b = Buffer.allocUnsafe(MiB);
    const f = openSync(path, "r");
    let off = 0;
    for (let n: number; (n = readSync(f, b, 0, MiB, off)) > 0; ) off += n;
    closeSync(f);
    if (off !== size) throw new Error(`read ${off} bytes of ${size}`);
  };
  const bindPid = haveBindfs ? bindfsPid(bind) : undefined;
  const runs = { bindfs: [] as number[], bindfsCpu: [] as number[], silo: [] as number[], daemonCpu: [] as number[], serverCpu: [] as number[], cachedMiB: [] as number[], localBlocks: [] as number[], spliced: [] as number[], reads: [] as number[] };
  const bindRun = () => {
    if (!haveBindfs) return;
    dropCaches();
    const cpu0 = cpuSecondsOf(bindPid!);
    runs.bindfs.push(size / MiB / time(() => read(join(bind, "big"))));
    runs.bindfsCpu.push((cpuSecondsOf(bindPid!) - cpu0) / GiB);
  };
  const siloRun = async () => {
    mount(env, "cold", mnt, "--read-only");
    const pid = (await readMountRecord(mnt))!.pid;
    dropCaches();
    const d0 = cpuSecondsOf(pid);
    const s0 = server!.cpuSeconds();
    runs.silo.push(size / MiB / time(() => read(join(mnt, "big"))));
    runs.daemonCpu.push((cpuSecondsOf(pid) - d0) / GiB);
    runs.serverCpu.push((server!.cpuSeconds() - s0) / GiB);
    // What the block cache kept of the file (blocks whose cache-file write could not start are not kept).
    const st = await controlRequest<{ cache: { sizeBytes: number; localBlocks?: number }; fuseReplies?: { spliced: number }; fuseRequests: Record<string, number> }>(join(stateDirFor(mnt), "control.sock"), "status");
    runs.cachedMiB.push(st.cache.sizeBytes / MiB);
    // Blocks read from the server's own files (local block reads; absent before them).
    runs.localBlocks.push(st.cache.localBlocks ?? 0);
    // READ replies spliced from the server's files (absent before splicing).
    runs.spliced.push(st.fuseReplies?.spliced ?? 0);
    runs.reads.push(st.fuseRequests.READ ?? 0);
    unmount(env, mnt);
  };
  console.log(`silo mount benchmark, one row: cold sequential read of a ${size / MiB} MiB file, 3 alternated runs each, load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}\n`);
  for (let i = 0; i < 3; i++) {
    if (i % 2 === 0) {
      bindRun();
      await siloRun();
    } else {
      await siloRun();
      bindRun();
    }
  }
  const med = (xs: number[]) => (xs.length ? median(xs) : undefined);
  const f = (x: number | undefined, unit: string) => (x === undefined ? "-" : `${x.toFixed(unit === "MiB/s" ? 0 : 2)} ${unit}`);
  const silo = med(runs.silo)!;
  const bindfs = med(runs.bindfs);
  console.log(`cold seq read: silo ${f(silo, "MiB/s")} (runs ${runs.silo.map((x) => x.toFixed(0)).join(", ")}), bindfs ${f(bindfs, "MiB/s")} (runs ${runs.bindfs.map((x) => x.toFixed(0)).join(", ")})${bindfs ? `, silo/bindfs ${(silo / bindfs).toFixed(2)}` : ""}`);
  console.log(`CPU per GiB (median): silo daemon ${f(med(runs.daemonCpu), "CPU-s")}, server ${f(med(runs.serverCpu), "CPU-s")}, bindfs ${f(med(runs.bindfsCpu), "CPU-s")}`);
  console.log(`block cache after each silo run: ${runs.cachedMiB.map((x) => x.toFixed(0)).join(", ")} MiB in cache files; blocks read locally: ${runs.localBlocks.join(", ")}; READs ${runs.reads.join(", ")}, of them spliced: ${runs.spliced.join(", ")}`);
  console.log(`load average after: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
  if (haveBindfs) bindfsUnmount(bind);
}

/** Median of a sample, in place. */
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Commit latency of one small file while another file on the mount is written continuously
 * (1 MiB every 20 ms, by another process), against the same commit on an idle mount. The commit
 * snapshots the writer's file and carries its bytes written since the previous commit, but never
 * waits for the writer.
 */
async function commitUnderWriter(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  await client.volumes.fromName("stream", { createIfMissing: true });
  const dir = join(work, "stream");
  mount(env, "stream", dir);
  const socket = join(stateDirFor(dir), "control.sock");
  const sample = async (tag: string) => {
    const out: number[] = [];
    for (let i = 0; i < 7; i++) {
      writeFileSync(join(dir, `small-${tag}-${i}`), `small ${i}`);
      const t = process.hrtime.bigint();
      await controlRequest(socket, "commit");
      out.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return median(out);
  };
  const idle = await sample("idle");
  const writerScript = `
    const fs = require("node:fs");
    const fd = fs.openSync(${JSON.stringify(join(dir, "stream.bin"))}, "w");
    const buf = Buffer.alloc(1 << 20, 7);
    setInterval(() => fs.writeSync(fd, buf), 20);`;
  const writer = spawn(process.execPath, ["-e", writerScript], { stdio: "ignore" });
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    const busy = await sample("busy");
    console.log(`\ncommit of 1 small file while another file is written at 50 MiB/s: median ${busy.toFixed(0)} ms (idle mount: ${idle.toFixed(0)} ms; ratio ${(busy / idle).toFixed(1)}x)`);
  } finally {
    writer.kill("SIGKILL");
    await new Promise((r) => writer.once("exit", r));
  }
  unmount(env, dir);
}

/** Daemon RSS and commit time with a 1 TiB sparse file holding 1 MiB, against the same daemon before the file exists. */
async function sparseRss(env: NodeJS.ProcessEnv, client: SiloClient): Promise<void> {
  await client.volumes.fromName("sparse", { createIfMissing: true });
  const dir = join(work, "sparse");
  mount(env, "sparse", dir);
  const record = await readMountRecord(dir);
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${record!.pid}/status`, "utf8"))![1]) / 1024;
  const socket = join(stateDirFor(dir), "control.sock");
  writeFileSync(join(dir, "empty"), "");
  await controlRequest(socket, "commit");
  const before = rss();
  const f = join(dir, "sparse.bin");
  const fd = openSync(f, "w");
  ftruncateSync(fd, 2 ** 40 - 1);
  writeSync(fd, Buffer.alloc(MiB, 1), 0, MiB, 2 ** 39);
  closeSync(fd);
  const t = process.hrtime.bigint();
  await controlRequest(socket, "commit");
  const commitMs = Number(process.hrtime.bigint() - t) / 1e6;
  const after = rss();
  console.log(`daemon RSS with a 1 TiB sparse file holding 1 MiB: ${after.toFixed(0)} MiB (same daemon before: ${before.toFixed(0)} MiB); its commit took ${commitMs.toFixed(0)} ms`);
  unmount(env, dir);
}

try {
  await main();
} finally {
  for (const dir of mounted) {
    try {
      execFileSync("umount", ["-l", dir]);
    } catch {
      // already gone
    }
  }
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
}
