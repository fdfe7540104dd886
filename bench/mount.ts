/**
 * `npm run bench:mount`: native disk vs a silo volume mount, in one run on one machine.
 * Sequential write/read of 1 GiB (cold and warm), 4 KiB random reads, create+stat+unlink of
 * 10,000 small files, and the latency of committing 1 changed file in a 100,000-file volume.
 * Prints silo/native ratios. Needs root (drop_caches, FUSE). SIZE_MB=… shrinks the big file.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { controlRequest } from "../client/mount-control.js";
import type { SiloClient } from "../client/index.js";
import type { ManifestEntry } from "../protocol/volume.js";
import { stateDirFor } from "../fuse/volume/daemon.js";
import { BenchSilo } from "./lib/silo-server.js";

const SILO_BIN = resolve(import.meta.dirname, "../../bin/silo.js");
const MiB = 1024 * 1024;
const SIZE = Number(process.env.SIZE_MB ?? 1024) * MiB;
const SMALL_FILES = 10_000;
const RANDOM_READS = 20_000;
const BIG_VOLUME_FILES = 100_000;

const work = mkdtempSync(join(tmpdir(), "silo-bench-mount-"));
let server: BenchSilo | undefined;
const mounted: string[] = [];

function silo(args: string[], env: NodeJS.ProcessEnv): string {
  return execFileSync(process.execPath, [SILO_BIN, ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
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

function seqWrite(path: string): number {
  const buf = randomBytes(MiB);
  return time(() => {
    const fd = openSync(path, "w");
    for (let off = 0; off < SIZE; off += MiB) writeSync(fd, buf, 0, MiB, off);
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

function randomReads(path: string): number {
  const buf = Buffer.allocUnsafe(4096);
  const blocks = SIZE / 4096;
  return time(() => {
    const fd = openSync(path, "r");
    for (let i = 0; i < RANDOM_READS; i++) readSync(fd, buf, 0, 4096, Math.floor(Math.random() * blocks) * 4096);
    closeSync(fd);
  });
}

function smallFiles(dir: string): { create: number; stat: number; unlink: number } {
  mkdirSync(join(dir, "small"), { recursive: true });
  const data = Buffer.alloc(100, 1);
  const names = Array.from({ length: SMALL_FILES }, (_, i) => join(dir, "small", `f${i}`));
  const create = time(() => names.forEach((n) => writeFileSync(n, data)));
  const stat = time(() => names.forEach((n) => statSync(n)));
  const unlink = time(() => names.forEach((n) => unlinkSync(n)));
  return { create: SMALL_FILES / create, stat: SMALL_FILES / stat, unlink: SMALL_FILES / unlink };
}

function mount(env: NodeJS.ProcessEnv, volume: string, dir: string, ...flags: string[]): void {
  silo(["volume", "mount", volume, dir, "--commit-interval-ms", "0", ...flags], env);
  mounted.push(dir);
}
function unmount(env: NodeJS.ProcessEnv, dir: string): number {
  const t = time(() => silo(["volume", "unmount", dir], env));
  mounted.splice(mounted.indexOf(dir), 1);
  return t;
}

/** Seeds a volume with many empty files straight through the API (creating them through a mount would dominate the run). */
async function seedVolume(client: SiloClient, name: string, files: number): Promise<void> {
  const vol = await client.volumes.fromName(name, { createIfMissing: true });
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
const rows: Array<[string, number, number, string]> = [];
const row = (what: string, native: number, siloValue: number, unit: string) => {
  rows.push([what, native, siloValue, unit]);
  console.log(`${what.padEnd(34)} native ${native.toFixed(1).padStart(10)} ${unit.padEnd(8)} silo ${siloValue.toFixed(1).padStart(10)} ${unit.padEnd(8)} silo/native ${(siloValue / native).toFixed(2)}`);
};

async function main(): Promise<void> {
  server = await BenchSilo.start();
  const env = server.env;
  const client = server.client();
  await client.volumes.fromName("bench", { createIfMissing: true });
  const native = join(work, "native");
  mkdirSync(native);
  const mnt = join(work, "mnt");
  console.log(`silo mount benchmark: ${SIZE / MiB} MiB file, ${SMALL_FILES} small files, ${RANDOM_READS} random 4 KiB reads\n`);

  // Sequential write (data reaches the disk: fsync natively, the commit on silo is reported apart).
  mount(env, "bench", mnt);
  row("seq write 1M (MiB/s)", rate(seqWrite(join(native, "big"))), rate(seqWrite(join(mnt, "big"))), "MiB/s");
  const commitSeconds = unmount(env, mnt);
  console.log(`  (silo: unmount with the final commit of ${SIZE / MiB} MiB took ${commitSeconds.toFixed(2)} s)`);

  // Cold read: page cache dropped; silo on a fresh mount, so every block comes from the server.
  mount(env, "bench", mnt, "--read-only");
  dropCaches();
  const nativeCold = seqRead(join(native, "big"));
  dropCaches();
  const siloCold = seqRead(join(mnt, "big"));
  // Warm figures: both files are in the page cache now; best of 3, interleaved, as the 2-core
  // machine is shared and a single run is noisy.
  let nativeWarm = Infinity, siloWarm = Infinity, nativeRandom = Infinity, siloRandom = Infinity;
  for (let i = 0; i < 3; i++) {
    nativeWarm = Math.min(nativeWarm, seqRead(join(native, "big")));
    siloWarm = Math.min(siloWarm, seqRead(join(mnt, "big")));
    nativeRandom = Math.min(nativeRandom, randomReads(join(native, "big")));
    siloRandom = Math.min(siloRandom, randomReads(join(mnt, "big")));
  }
  row("seq read cold (MiB/s)", rate(nativeCold), rate(siloCold), "MiB/s");
  row("seq read warm (MiB/s)", rate(nativeWarm), rate(siloWarm), "MiB/s");
  row("4k random read warm (IOPS)", RANDOM_READS / nativeRandom, RANDOM_READS / siloRandom, "IOPS");
  // Random reads on a fresh mount with cold caches: each touches an uncached 8 MiB block at first.
  unmount(env, mnt);
  mount(env, "bench", mnt, "--read-only");
  dropCaches();
  const nativeRandomCold = randomReads(join(native, "big"));
  dropCaches();
  row("4k random read cold (IOPS)", RANDOM_READS / nativeRandomCold, RANDOM_READS / randomReads(join(mnt, "big")), "IOPS");
  unmount(env, mnt);

  mount(env, "bench", mnt);
  const n = smallFiles(native);
  const s = smallFiles(mnt);
  row("small files: create (files/s)", n.create, s.create, "files/s");
  row("small files: stat (files/s)", n.stat, s.stat, "files/s");
  row("small files: unlink (files/s)", n.unlink, s.unlink, "files/s");
  unmount(env, mnt);

  // Commit latency of one changed file in a 100,000-file volume.
  await seedVolume(client, "many", BIG_VOLUME_FILES);
  const manyDir = join(work, "many");
  const loadSeconds = time(() => mount(env, "many", manyDir));
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
  await client.close();
}

try {
  await main();
} finally {
  for (const dir of mounted) {
    try {
      execFileSync("fusermount", ["-uz", dir]);
    } catch {
      // already gone
    }
  }
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
}
