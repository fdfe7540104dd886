/**
 * `npm run bench:dict`: silo's Dict against Redis on this machine, in one run.
 *
 * Both durable the way they are usually run: silo answers a put after its LMDB commit is
 * fsync'd; Redis runs with `appendonly yes, appendfsync everysec` (it may lose the last second).
 * Each side gets a fresh server; the same client process drives both. Prints ops/s and p50/p99
 * latency at 1 and 64 requests in flight, with the ratio silo/Redis.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { SiloClient } from "../client/index.js";

const REPO = resolve(import.meta.dirname, "../..");
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const KEYS = 10_000;
const VALUE_BYTES = 100;

interface Result {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

type Op = (i: number) => Promise<unknown>;

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => done(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

/** Starts a process and waits until its output matches `ready`. */
function startProcess(cmd: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const proc = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  return new Promise((done, fail) => {
    const onData = (d: Buffer) => {
      log += d.toString();
      if (ready.test(log)) done(proc);
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.once("error", fail);
    proc.once("exit", (code) => fail(new Error(`${cmd} exited with ${code}:\n${log}`)));
  });
}

/** Runs `op` from `inFlight` concurrent loops for the duration; latency per call. */
async function measure(inFlight: number, op: Op): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  const deadline = performance.now() + DURATION_MS;
  const loop = async () => {
    while (performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      await op(i);
      latencies.push(performance.now() - t0);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
  return { opsPerSec: latencies.length / elapsed, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}

interface Target {
  put: Op;
  get: Op;
  close(): Promise<void>;
}

const key = (i: number) => `key:${i % KEYS}`;

async function startSilo(home: string): Promise<Target> {
  const proc = await startProcess(
    process.execPath,
    [join(REPO, "bin/silo.js"), "serve", "--port", "0", "--home", home, "--log-level", "warn"],
    /silo is serving at/,
  );
  const profile = JSON.parse(readFileSync(join(home, "config.json"), "utf8")) as { serverUrl: string; tokenId: string; tokenSecret: string };
  const silo = new SiloClient(profile);
  const d = await silo.dicts.fromName<string, Uint8Array>("bench", { createIfMissing: true });
  const value = new Uint8Array(VALUE_BYTES).fill(7);
  return {
    put: (i) => d.put(key(i), value),
    get: (i) => d.get(key(i)),
    async close() {
      await silo.close();
      proc.kill("SIGTERM");
    },
  };
}

async function startRedis(dir: string): Promise<Target> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""];
  const proc = await startProcess("redis-server", args, /Ready to accept connections/);
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true });
  await redis.connect();
  const value = Buffer.alloc(VALUE_BYTES, 7);
  return {
    put: (i) => redis.set(key(i), value),
    get: (i) => redis.getBuffer(key(i)),
    async close() {
      redis.disconnect();
      proc.kill("SIGTERM");
    },
  };
}

/** The disk's fdatasync latency (p50, ms) in `dir`: what every durable silo write waits for. */
function fsyncLatencyMs(dir: string): number {
  const fd = openSync(join(dir, "fsync-probe"), "w");
  const page = Buffer.alloc(4096, 1);
  const times: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      writeSync(fd, page, 0, page.length, (i % 16) * page.length);
      fdatasyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
  }
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

/** Runs every case on both targets back to back, so a busy machine slows both alike. */
async function run(silo: Target, redis: Target): Promise<{ silo: Map<string, Result>; redis: Map<string, Result> }> {
  const results = { silo: new Map<string, Result>(), redis: new Map<string, Result>() };
  // Warm up connections and JIT, and fill the keyspace so gets hit.
  await measure(64, silo.put);
  await measure(64, redis.put);
  for (const op of ["put", "get"] as const) {
    for (const inFlight of [1, 64]) {
      results.silo.set(`${op}@${inFlight}`, await measure(inFlight, silo[op]));
      results.redis.set(`${op}@${inFlight}`, await measure(inFlight, redis[op]));
    }
  }
  return results;
}

function table(silo: Map<string, Result>, redis: Map<string, Result>): string {
  const rows = [["op", "in flight", "silo ops/s", "Redis ops/s", "silo/Redis", "silo p50/p99 ms", "Redis p50/p99 ms"]];
  for (const [name, s] of silo) {
    const r = redis.get(name)!;
    const [op, inFlight] = name.split("@");
    rows.push([
      op!,
      inFlight!,
      Math.round(s.opsPerSec).toLocaleString("en-US"),
      Math.round(r.opsPerSec).toLocaleString("en-US"),
      `${(s.opsPerSec / r.opsPerSec).toFixed(2)}×`,
      `${s.p50Ms.toFixed(2)} / ${s.p99Ms.toFixed(2)}`,
      `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)}`,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

const siloHome = mkdtempSync(join(tmpdir(), "silo-bench-"));
const redisDir = mkdtempSync(join(tmpdir(), "redis-bench-"));
const targets: Target[] = [];
try {
  console.log(`Dict benchmark: ${VALUE_BYTES}-byte values over ${KEYS} keys, ${DURATION_MS} ms per case`);
  console.log(`Disk: 4 KiB write + fdatasync p50 ${fsyncLatencyMs(siloHome).toFixed(3)} ms (silo waits for this on every write; Redis everysec does not)`);
  const silo = await startSilo(siloHome);
  targets.push(silo);
  const redis = await startRedis(redisDir);
  targets.push(redis);
  const results = await run(silo, redis);
  console.log(table(results.silo, results.redis));
} finally {
  for (const t of targets) await t.close();
  rmSync(siloHome, { recursive: true, force: true });
  rmSync(redisDir, { recursive: true, force: true });
}
