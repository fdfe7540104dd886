/**
 * `npm run bench:nfs`: what close-to-open consistency costs. The same small-file and large-file
 * work on a network file system mount, on a volume mount (commit/reload: nothing reaches the
 * server until a commit) and on the native disk, in one run. Prints per-operation times and
 * nfs/volume ratios. Needs root (FUSE). FILES=… and BIG_MB=… change the sizes.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BenchSilo } from "./lib/silo-server.js";

const SILO_BIN = resolve(import.meta.dirname, "../../bin/silo.js");
const FILES = Number(process.env.FILES ?? 500);
const BIG = Number(process.env.BIG_MB ?? 64) * 1024 * 1024;

const work = mkdtempSync(join(tmpdir(), "silo-bench-nfs-"));
const mounted: Array<[string, string]> = [];
let server: BenchSilo | undefined;

const silo = (args: string[]) => execFileSync(process.execPath, [SILO_BIN, ...args], { env: server!.env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

/** Microseconds per call of fn over n calls. */
function perOp(n: number, fn: (i: number) => void): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t) / 1e3 / n;
}

function writeFile(path: string, data: Buffer): void {
  const fd = openSync(path, "w");
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, Math.min(1 << 20, data.length - off));
  closeSync(fd);
}

interface Row {
  create: number;
  readOther: number;
  stat: number;
  bigWrite: number;
  bigRead: number;
}

/** The workload on `dir`; reads go through `other` (a second mount of the same store, or the same dir). */
function workload(dir: string, other: string): Row {
  const small = randomBytes(4096);
  mkdirSync(join(dir, "small"), { recursive: true });
  const create = perOp(FILES, (i) => writeFile(join(dir, "small", `f${i}`), small));
  const readOther = perOp(FILES, (i) => readFileSync(join(other, "small", `f${i}`)));
  const stat = perOp(FILES, (i) => statSync(join(other, "small", `f${i}`)));
  const big = randomBytes(BIG);
  const bigWrite = perOp(1, () => writeFile(join(dir, "big.bin"), big)) / 1e3;
  const bigRead = perOp(1, () => readFileSync(join(other, "big.bin"))) / 1e3;
  return { create, readOther, stat, bigWrite, bigRead };
}

async function main(): Promise<void> {
  server = await BenchSilo.start();
  silo(["nfs", "create", "bench"]);
  silo(["volume", "create", "bench"]);
  const dirs = { nfsA: join(work, "nfs-a"), nfsB: join(work, "nfs-b"), vol: join(work, "vol"), native: join(work, "native") };
  mkdirSync(dirs.native);
  for (const [kind, dir] of [["nfs", dirs.nfsA], ["nfs", dirs.nfsB], ["volume", dirs.vol]] as const) {
    silo([kind, "mount", "bench", dir]);
    mounted.push([kind, dir]);
  }
  const native = workload(dirs.native, dirs.native);
  const volume = workload(dirs.vol, dirs.vol);
  const nfs = workload(dirs.nfsA, dirs.nfsB);
  const fmt = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`);
  const rows: Array<[string, keyof Row, boolean]> = [
    [`create+write 4 KiB+close (${FILES} files)`, "create", true],
    ["open+read 4 KiB (nfs: in the other mount)", "readOther", true],
    ["stat (nfs: in the other mount)", "stat", true],
    [`write ${BIG / 1024 / 1024} MiB + close`, "bigWrite", false],
    [`read ${BIG / 1024 / 1024} MiB (nfs: in the other mount)`, "bigRead", false],
  ];
  console.log(`| operation | native | volume mount | nfs mount | nfs / volume |\n|---|---|---|---|---|`);
  for (const [label, key, micro] of rows) {
    const show = (v: number) => (micro ? fmt(v) : `${v.toFixed(0)} ms`);
    console.log(`| ${label} | ${show(native[key])} | ${show(volume[key])} | ${show(nfs[key])} | ${(nfs[key] / volume[key]).toFixed(1)}× |`);
  }
}

try {
  await main();
} finally {
  for (const [kind, dir] of mounted) {
    try {
      silo([kind, "unmount", dir]);
    } catch {
      // Reported by the unmount itself; keep unmounting the others.
    }
  }
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
}
