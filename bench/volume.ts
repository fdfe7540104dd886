/**
 * `npm run bench:volume`: silo volume transfers against `cp` on the same disk, the cost of a
 * one-file commit as the volume grows, and the S3 blob backend against the AWS SDK on the same
 * bucket. Prints ratios (silo / peer); lower is better. `--commit-only`, `--s3-only`, `--large-only`
 * pick parts; `--size-mib N` (2048) and `--runs N` (3) shape the large-file rows.
 */
import { type SpawnOptions, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Change, SiloClient, Volume } from "../client/index.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { diskFlushes } from "./lib/disk-flushes.js";
import { BenchSilo } from "./lib/silo-server.js";
import { s3Backend } from "./lib/volume-s3.js";

const REPO = resolve(import.meta.dirname, "../..");
const SILO = join(REPO, "bin/silo.js");
const GiB = 1024 ** 3;

/** Wall-clock and CPU seconds (user + system) of a command and its children. */
interface Cost {
  wall: number;
  cpu: number;
}

/**
 * Runs a command under bash and reads its CPU time from bash's `times` (the children's user
 * and system time), so no extra package is needed.
 */
function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<Cost> {
  const script = '"$@" >/dev/null; rc=$?; times >&2; exit $rc';
  return new Promise((res, rej) => {
    const t = performance.now();
    const p = spawn("bash", ["-c", script, "bash", cmd, ...args], { stdio: ["ignore", "ignore", "pipe"], ...opts });
    let err = "";
    p.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", rej);
    p.on("close", (code) => {
      const wall = (performance.now() - t) / 1000;
      if (code !== 0) return rej(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err}`));
      const lines = err.trim().split("\n");
      const secs = (lines[lines.length - 1] ?? "").split(/\s+/).map((x) => {
        const m = /(\d+)m([\d.]+)s/.exec(x);
        return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
      });
      res({ wall, cpu: secs.reduce((a, b) => a + b, 0) });
    });
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function writeRandomFile(path: string, size: number, salt = 0): Promise<void> {
  const fh = await open(path, "w");
  const chunk = randomBytes(64 * 1024 * 1024);
  for (let pos = 0; pos < size; pos += chunk.length) {
    // Vary every block of every chunk (and each run, by `salt`), so no block dedups against
    // another: marking only each chunk's first block left the other seven the same in every
    // chunk (23 distinct blocks of 128 in 1 GiB), and the put sent 18 % of the file.
    for (let b = 0; b < chunk.length; b += BLOCK_SIZE) {
      chunk.writeUInt32LE((pos + b) / BLOCK_SIZE, b);
      chunk.writeUInt32LE(salt, b + 4);
    }
    await fh.write(chunk, 0, Math.min(chunk.length, size - pos));
  }
  await fh.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (s: number) => `${s.toFixed(2)} s`;

/** A number after `--name` on the command line, or the default. */
function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

/**
 * One large file: `silo volume put` against `cp` + `sync` of the copy, `silo volume get`
 * against `cp`, alternated, median of `runs`; wall-clock ratios and CPU seconds per GiB of the
 * CLI (client), the server and the peer, and the disk cache flushes each put and each `cp` +
 * `sync` caused. Each run writes a new file, so nothing dedups.
 */
async function largeFile(work: string, server: BenchSilo): Promise<void> {
  const env = server.env;
  const size = flag("size-mib", 2048) * 1024 * 1024;
  const runs = flag("runs", 3);
  const gib = size / GiB;
  const silo = (args: string[]) => run(process.execPath, [SILO, ...args], { env });
  const big = join(work, "big.bin");
  const got = join(work, "big.got");
  const rows = { put: [] as Cost[], putServer: [] as number[], cpSync: [] as Cost[], get: [] as Cost[], getServer: [] as number[], cp: [] as Cost[] };
  // Device cache flushes (each fsync's barrier): silo makes every block durable before answering.
  const flushes = diskFlushes(work);
  const flushCounts = { put: [] as number[], cpSync: [] as number[] };
  const counted = async <T>(into: number[], fn: () => Promise<T>): Promise<T> => {
    const before = flushes?.() ?? 0;
    const out = await fn();
    if (flushes) into.push(flushes() - before);
    return out;
  };
  const withServerCpu = async (fn: () => Promise<Cost>): Promise<[Cost, number]> => {
    const before = server.cpuSeconds();
    const cost = await fn();
    return [cost, server.cpuSeconds() - before];
  };
  const putOne = async () => {
    const [c, s] = await counted(flushCounts.put, () => withServerCpu(() => silo(["volume", "put", "--force", "bench-big", big, "/big.bin"])));
    rows.put.push(c);
    rows.putServer.push(s);
  };
  const cpSyncOne = async () => {
    const target = join(work, "big.cps");
    const [copy, sync] = await counted(flushCounts.cpSync, async () => [await run("cp", [big, target]), await run("sync", [target])]);
    rows.cpSync.push({ wall: copy.wall + sync.wall, cpu: copy.cpu + sync.cpu });
    rmSync(target);
  };
  const getOne = async () => {
    rmSync(got, { force: true });
    const [c, s] = await withServerCpu(() => silo(["volume", "get", "bench-big", "/big.bin", got]));
    rows.get.push(c);
    rows.getServer.push(s);
  };
  const cpOne = async () => {
    const target = join(work, "big.cp");
    rows.cp.push(await run("cp", [big, target]));
    rmSync(target);
  };
  await silo(["volume", "create", "bench-big"]);
  for (let r = 0; r < runs; r++) {
    await writeRandomFile(big, size, r + 1);
    // Alternate the order, so neither side always runs on the warmer machine.
    for (const step of r % 2 === 0 ? [putOne, cpSyncOne, getOne, cpOne] : [cpSyncOne, putOne, cpOne, getOne]) await step();
    if (!(await sameFile(big, got))) throw new Error("downloaded file differs");
  }
  rmSync(got, { force: true });
  rmSync(big);
  const wall = (xs: Cost[]) => median(xs.map((x) => x.wall));
  const cpu = (xs: Cost[]) => median(xs.map((x) => x.cpu)) / gib;
  console.log(`\n(a) one ${(size / 1024 ** 2).toFixed(0)} MiB file, median of ${runs} runs (alternated); CPU in CPU-seconds per GiB`);
  console.log("    put against cp + sync of the copy (silo acknowledges only durable blocks), get against cp");
  console.log("case         silo       peer   ratio   CLI CPU  server CPU  peer CPU");
  const row = (name: string, s: Cost[], serverCpu: number[], peer: Cost[]) =>
    console.log(
      `${name.padEnd(6)} ${fmt(wall(s)).padStart(9)} ${fmt(wall(peer)).padStart(10)} ${(wall(s) / wall(peer)).toFixed(2).padStart(6)}x` +
        ` ${cpu(s).toFixed(2).padStart(9)} ${(median(serverCpu) / gib).toFixed(2).padStart(11)} ${cpu(peer).toFixed(2).padStart(9)}`,
    );
  row("put", rows.put, rows.putServer, rows.cpSync);
  row("get", rows.get, rows.getServer, rows.cp);
  const each = (xs: Cost[]) => xs.map((x) => x.wall.toFixed(2)).join(" ");
  console.log(`    runs (s): put ${each(rows.put)} | cp+sync ${each(rows.cpSync)} | get ${each(rows.get)} | cp ${each(rows.cp)}`);
  if (flushes) console.log(`    disk cache flushes per GiB (any process's): put ${flushCounts.put.map((n) => (n / gib).toFixed(0)).join(" ")} | cp+sync ${flushCounts.cpSync.map((n) => (n / gib).toFixed(0)).join(" ")}`);
}

/** 10,000 files of 4 KiB: put against `cp -r` + `sync` of every copy, get against `cp -r` (one run). */
async function smallFiles(work: string, env: NodeJS.ProcessEnv): Promise<void> {
  const silo = (args: string[]) => run(process.execPath, [SILO, ...args], { env });
  const small = join(work, "small");
  mkdirSync(small);
  for (let i = 0; i < 10_000; i++) writeFileSync(join(small, `f${i}`), randomBytes(4096));
  console.log("\n(a2) 10,000 files of 4 KiB (one run; ratio = silo / peer)");
  const row = (name: string, s: number, c: number) => console.log(`${name.padEnd(22)} ${fmt(s).padStart(8)} ${fmt(c).padStart(9)} ${(s / c).toFixed(1).padStart(7)}x`);
  await silo(["volume", "create", "bench-small"]);
  const put = await silo(["volume", "put", "bench-small", small, "/small"]);
  const cp = await run("cp", ["-r", small, join(work, "small.cp")]);
  const sync = await run("find", [join(work, "small.cp"), "-type", "f", "-exec", "sync", "{}", "+"]);
  row("put vs cp -r + sync", put.wall, cp.wall + sync.wall);
  const get = await silo(["volume", "get", "bench-small", "/small", join(work, "small.got")]);
  const back = await run("cp", ["-r", join(work, "small.cp"), join(work, "small.back")]);
  row("get vs cp -r", get.wall, back.wall);
}

/** Whether two files have the same bytes (streamed: files may exceed what one Buffer holds). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const h = async (p: string) => {
    const sha = createHash("sha256");
    for await (const chunk of createReadStream(p, { highWaterMark: 8 << 20 })) sha.update(chunk as Buffer);
    return sha.digest("hex");
  };
  return (await h(a)) === (await h(b));
}

/** Fills a volume with `n` files (1,000 per directory) sharing one tiny block. */
async function fill(vol: Volume, n: number, hash: string): Promise<void> {
  for (let start = 0; start < n; start += 20_000) {
    const changes: Change[] = [];
    for (let i = start; i < Math.min(n, start + 20_000); i++) {
      changes.push({ op: "put", entry: { path: `d${Math.floor(i / 1000)}/f${i}`, type: "file", mode: 0o644, size: 1, mtimeMs: 0, blocks: [hash] } });
    }
    await vol.blocks.commitChanges({ baseVersion: await vol.blocks.latestVersion(), changes });
  }
}

async function commitCost(client: SiloClient): Promise<void> {
  const one = Buffer.from("x");
  const hash = createHash("sha256").update(one).digest("hex");
  const sizes = [1_000, 100_000];
  const vols: Volume[] = [];
  for (const n of sizes) {
    const vol = await client.volumes.fromName(`bench-commit-${n}`, { createIfMissing: true });
    await vol.blocks.uploadBlock(hash, one);
    await fill(vol, n, hash);
    vols.push(vol);
  }
  // Alternate between the two volumes so that load on the machine hits both alike.
  const commits: number[][] = sizes.map(() => []);
  const deltas: number[][] = sizes.map(() => []);
  for (let i = 0; i < 300; i++) {
    for (const [k, vol] of vols.entries()) {
      const base = await vol.blocks.latestVersion();
      const change: Change = { op: "put", entry: { path: `d0/f${i % 1000}`, type: "file", mode: 0o644, size: 1, mtimeMs: i + 1, blocks: [hash] } };
      const c = await timed(() => vol.blocks.commitChanges({ baseVersion: base, changes: [change] }));
      const d = await timed(() => vol.blocks.delta(base, base + 1));
      if (i >= 50) {
        commits[k]!.push(c);
        deltas[k]!.push(d);
      }
    }
  }
  console.log("\n(b) committing 1 changed file (median of 250, after 50 warm-up), and fetching its delta");
  for (const [k, n] of sizes.entries()) {
    console.log(`volume of ${String(n).padStart(7)} files: commit ${(median(commits[k]!) * 1000).toFixed(2)} ms, delta ${(median(deltas[k]!) * 1000).toFixed(2)} ms`);
  }
  const ratio = (xs: number[][]) => (median(xs[1]!) / median(xs[0]!)).toFixed(2);
  console.log(`ratio 100,000 / 1,000 files: commit ${ratio(commits)}x, delta ${ratio(deltas)}x (near 1 = independent of volume size)`);

  // Versions as a user feature: restoring one file to a version 300 commits back, and listing recent history.
  const restores: number[][] = sizes.map(() => []);
  const wholes: number[][] = sizes.map(() => []);
  const histories: number[][] = sizes.map(() => []);
  const before = await Promise.all(vols.map(async (vol) => (await vol.blocks.latestVersion()) - 300));
  for (let i = 0; i < 100; i++) {
    for (const [k, vol] of vols.entries()) {
      const r = await timed(() => vol.restore(before[k]!, `d0/f${i}`));
      const h = await timed(() => vol.history({ limit: 20 }));
      // The whole volume back to the version before the restore just made: one path differs.
      const latest = await vol.blocks.latestVersion();
      const w = await timed(() => vol.restore(latest - 1));
      if (i >= 20) {
        wholes[k]!.push(w);
        restores[k]!.push(r);
        histories[k]!.push(h);
      }
    }
  }
  console.log(
    "\n(c) restoring 1 file to a version 300 commits back, the whole volume to the version before, and listing the last 20 versions (median of 80, after 20 warm-up)",
  );
  for (const [k, n] of sizes.entries()) {
    const ms = (xs: number[][]) => (median(xs[k]!) * 1000).toFixed(2);
    console.log(`volume of ${String(n).padStart(7)} files: restore 1 file ${ms(restores)} ms, whole volume ${ms(wholes)} ms, history ${ms(histories)} ms`);
  }
  console.log(
    `ratio 100,000 / 1,000 files: restore 1 file ${ratio(restores)}x, whole volume ${ratio(wholes)}x, history ${ratio(histories)}x (near 1 = independent of volume size)`,
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "silo-bench-volume-"));
  const server = await BenchSilo.start();
  try {
    console.log(`silo volume benchmark (server ${server.url}, work dir ${work})`);
    if (!process.argv.includes("--commit-only") && !process.argv.includes("--s3-only")) {
      await largeFile(work, server);
      if (!process.argv.includes("--large-only")) await smallFiles(work, server.env);
    }
    if (process.argv.includes("--large-only")) return;
    const client = server.client();
    try {
      if (!process.argv.includes("--s3-only")) await commitCost(client);
    } finally {
      await client.close();
    }
    if (!process.argv.includes("--commit-only")) await s3Backend();
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
