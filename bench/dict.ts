/**
 * `npm run bench:dict`: silo's Dict against Redis on this machine, in one run.
 *
 * Both durable the way they are usually run: silo answers a put after its LMDB commit is
 * fsync'd; Redis runs with `appendonly yes, appendfsync everysec` (it may lose the last second).
 * Each side gets a fresh server; the same client process drives both. Prints ops/s and p50/p99
 * latency at 1 and 64 requests in flight, with the ratio silo/Redis.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { measure } from "./lib/measure.js";
import { BenchRedis } from "./lib/redis-server.js";
import { BenchSilo } from "./lib/silo-server.js";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const KEYS = 10_000;
const VALUE_BYTES = 100;

type Result = Awaited<ReturnType<typeof measure>>;

interface Target {
  put(i: number): Promise<unknown>;
  get(i: number): Promise<unknown>;
}

const key = (i: number) => `key:${i % KEYS}`;

/** The disk's fdatasync latency (p50, ms): what every durable silo write waits for. */
function fsyncLatencyMs(): number {
  const dir = mkdtempSync(join(tmpdir(), "fsync-probe-"));
  const fd = openSync(join(dir, "probe"), "w");
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
    rmSync(dir, { recursive: true, force: true });
  }
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}

/** `inFlight` loops of one operation, each call on the next key. */
function run(inFlight: number, op: (i: number) => Promise<unknown>): Promise<Result> {
  let next = 0;
  return measure(inFlight, DURATION_MS, async () => void (await op(next++)));
}

/** Runs every case on both targets back to back, so a busy machine slows both alike. */
async function compare(silo: Target, redis: Target): Promise<Array<[string, Result, Result]>> {
  // Fill the keyspace so gets hit (and warm connections and JIT).
  await run(64, (i) => silo.put(i));
  await run(64, (i) => redis.put(i));
  const rows: Array<[string, Result, Result]> = [];
  for (const op of ["put", "get"] as const) {
    for (const inFlight of [1, 64]) {
      const s = await run(inFlight, (i) => silo[op](i));
      const r = await run(inFlight, (i) => redis[op](i));
      rows.push([`${op}@${inFlight}`, s, r]);
    }
  }
  return rows;
}

function table(rows: Array<[string, Result, Result]>): string {
  const lines = [["op", "in flight", "silo ops/s", "Redis ops/s", "silo/Redis", "silo p50/p99 ms", "Redis p50/p99 ms"]];
  for (const [name, s, r] of rows) {
    const [op, inFlight] = name.split("@");
    lines.push([
      op!,
      inFlight!,
      Math.round(s.opsPerSec).toLocaleString("en-US"),
      Math.round(r.opsPerSec).toLocaleString("en-US"),
      `${(s.opsPerSec / r.opsPerSec).toFixed(2)}×`,
      `${s.p50Ms.toFixed(2)} / ${s.p99Ms.toFixed(2)}`,
      `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)}`,
    ]);
  }
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  const line = (l: string[]) => `| ${l.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`;
  return [line(lines[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...lines.slice(1).map(line)].join("\n");
}

console.log(`Dict benchmark: ${VALUE_BYTES}-byte values over ${KEYS} keys, ${DURATION_MS} ms per case`);
console.log(`Disk: 4 KiB write + fdatasync p50 ${fsyncLatencyMs().toFixed(3)} ms (silo waits for this on every write; Redis everysec does not)`);
const siloServer = await BenchSilo.start();
const redisServer = await BenchRedis.start(["--appendonly", "yes", "--appendfsync", "everysec"]);
const silo = siloServer.client();
const redis = new Redis({ port: redisServer.port, host: "127.0.0.1" });
try {
  const d = await silo.dicts.fromName<string, Uint8Array>("bench", { createIfMissing: true });
  const siloValue = new Uint8Array(VALUE_BYTES).fill(7);
  const redisValue = Buffer.alloc(VALUE_BYTES, 7);
  const rows = await compare(
    { put: (i) => d.put(key(i), siloValue), get: (i) => d.get(key(i)) },
    { put: (i) => redis.set(key(i), redisValue), get: (i) => redis.getBuffer(key(i)) },
  );
  console.log(table(rows));
} finally {
  redis.disconnect();
  await silo.close();
  await siloServer.stop();
  await redisServer.stop();
}
