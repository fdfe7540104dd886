/**
 * `npm run bench:volume`: silo volume transfers against `cp` on the same disk, the cost of a
 * one-file commit as the volume grows, and the S3 blob backend against the AWS SDK on the same
 * bucket. Prints ratios (silo / peer); lower is better. `--commit-only`, `--s3-only` pick parts.
 */
import { type SpawnOptions, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Change, SiloClient, type Volume } from "../client/index.js";
import { BenchSilo } from "./lib/silo-server.js";
import { s3Backend } from "./lib/volume-s3.js";

const REPO = resolve(import.meta.dirname, "../..");
const SILO = join(REPO, "bin/silo.js");
const GiB = 1024 ** 3;

function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], ...opts });
    let err = "";
    p.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", rej);
    p.on("close", (code) => (code === 0 ? res() : rej(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err}`))));
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function writeRandomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, "w");
  const chunk = randomBytes(64 * 1024 * 1024);
  for (let pos = 0; pos < size; pos += chunk.length) {
    // Vary each chunk so blocks do not dedup against each other.
    chunk.writeUInt32LE(pos / chunk.length, 0);
    await fh.write(chunk, 0, Math.min(chunk.length, size - pos));
  }
  await fh.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (s: number) => `${s.toFixed(2)} s`;

async function transfers(work: string, env: NodeJS.ProcessEnv): Promise<void> {
  const silo = (args: string[]) => run(process.execPath, [SILO, ...args], { env });
  const big = join(work, "big.bin");
  await writeRandomFile(big, GiB);
  const small = join(work, "small");
  mkdirSync(small);
  for (let i = 0; i < 10_000; i++) writeFileSync(join(small, `f${i}`), randomBytes(4096));

  console.log("\n(a) transfers: silo volume put/get vs cp on the same disk (ratio = silo / cp)");
  console.log("    silo fsyncs what it stores; for puts, 'cp+sync' also fsyncs the copies (coreutils sync FILE…)");
  console.log("case                       silo        cp     ratio   cp+sync   ratio");
  const row = (name: string, s: number, c: number, cs?: number) =>
    console.log(
      `${name.padEnd(24)} ${fmt(s).padStart(8)} ${fmt(c).padStart(9)} ${(s / c).toFixed(1).padStart(8)}x` +
        (cs === undefined ? "" : ` ${fmt(cs).padStart(9)} ${(s / cs).toFixed(1).padStart(6)}x`),
    );

  await silo(["volume", "create", "bench-big"]);
  const putBig = await timed(() => silo(["volume", "put", "bench-big", big, "/big.bin"]));
  const cpBig = await timed(() => run("cp", [big, join(work, "big.cp")]));
  const cpSyncBig = await timed(async () => {
    await run("cp", [big, join(work, "big.cps")]);
    await run("sync", [join(work, "big.cps")]);
  });
  row("put 1 GiB file", putBig, cpBig, cpSyncBig);
  const getBig = await timed(() => silo(["volume", "get", "bench-big", "/big.bin", join(work, "big.got")]));
  const cpBigBack = await timed(() => run("cp", [join(work, "big.cp"), join(work, "big.back")]));
  row("get 1 GiB file", getBig, cpBigBack);
  if (!sameFile(big, join(work, "big.got"))) throw new Error("downloaded 1 GiB file differs");
  for (const f of ["big.cp", "big.cps", "big.got", "big.back"]) rmSync(join(work, f));

  await silo(["volume", "create", "bench-small"]);
  const putSmall = await timed(() => silo(["volume", "put", "bench-small", small, "/small"]));
  const cpSmall = await timed(() => run("cp", ["-r", small, join(work, "small.cp")]));
  const cpSyncSmall = await timed(async () => {
    await run("cp", ["-r", small, join(work, "small.cps")]);
    await run("find", [join(work, "small.cps"), "-type", "f", "-exec", "sync", "{}", "+"]);
  });
  row("put 10,000 × 4 KiB", putSmall, cpSmall, cpSyncSmall);
  const getSmall = await timed(() => silo(["volume", "get", "bench-small", "/small", join(work, "small.got")]));
  const cpSmallBack = await timed(() => run("cp", ["-r", join(work, "small.cp"), join(work, "small.back")]));
  row("get 10,000 × 4 KiB", getSmall, cpSmallBack);
}

function sameFile(a: string, b: string): boolean {
  const h = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
  return h(a) === h(b);
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
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "silo-bench-volume-"));
  const server = await BenchSilo.start();
  try {
    console.log(`silo volume benchmark (server ${server.url}, work dir ${work})`);
    if (!process.argv.includes("--commit-only") && !process.argv.includes("--s3-only")) await transfers(work, server.env);
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
