/**
 * `npm run bench:queue`: silo queues vs Redis lists (LPUSH + BRPOP via ioredis, appendonly yes),
 * both on this machine in the same run. Prints ops/s, latency and the silo/Redis ratio.
 *   put+get  – each worker puts one item and takes one back (a round trip through the queue);
 *              ops/s counts these pairs, latency is the pair's.
 *   batch    – putMany of 100 items then getMany of 100 (Redis: one LPUSH of 100, RPOP count 100);
 *              ops/s counts items.
 * Redis runs with appendonly yes and its default appendfsync everysec (the ratio's peer: an
 * acknowledged write may be lost in a crash), and again with appendfsync always, which like silo
 * answers only after the write is on disk (shown for reference).
 * BENCH_SECONDS (default 4) sets each measurement's length.
 */
import { Redis } from "ioredis";
import { Packr } from "msgpackr";
import { BenchRedis } from "./lib/redis-server.js";
import { BenchSilo } from "./lib/silo-server.js";
import { measure } from "./lib/measure.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const BATCH = 100;
const item = (i: number) => ({ id: i, at: Date.now(), payload: "x".repeat(64) });
const packr = new Packr({ structuredClone: true });

type Result = Awaited<ReturnType<typeof measure>>;

interface Row {
  name: string;
  silo: Result;
  redis: Result;
  redisAlways: Result;
  unit: string;
  perOp: number;
}

/** The Redis side of each workload, on 64 connections (BRPOP blocks its connection: one per worker). */
function redisWorkloads(conns: Redis[]) {
  let n = 0;
  return {
    putGet: async (w: number) => {
      const c = conns[w]!;
      await c.lpush("bench", packr.pack(item(n++)));
      const got = await c.brpopBuffer("bench", 0);
      if (got) packr.unpack(got[1]);
    },
    batch: async () => {
      const c = conns[0]!;
      await c.lpush("bench-batch", ...batch().map((v) => packr.pack(v)));
      const got = await c.rpopBuffer("bench-batch", BATCH);
      for (const b of got ?? []) packr.unpack(b);
    },
  };
}

const batch = () => Array.from({ length: BATCH }, (_, i) => item(i));

async function withRedis<T>(fsync: "everysec" | "always", fn: (conns: Redis[]) => Promise<T>): Promise<T> {
  const server = await BenchRedis.start(["--appendonly", "yes", "--appendfsync", fsync]);
  const conns = Array.from({ length: 64 }, () => new Redis({ port: server.port }));
  try {
    await Promise.all(conns.map((c) => c.ping()));
    return await fn(conns);
  } finally {
    conns.forEach((c) => c.disconnect());
    await server.stop();
  }
}

async function main(): Promise<void> {
  const ms = SECONDS * 1000;
  const silo = await BenchSilo.start();
  const siloResults: Result[] = [];
  try {
    const client = silo.client();
    const q = await client.queues.fromName<ReturnType<typeof item>>("bench", { createIfMissing: true });
    let n = 0;
    for (const inflight of [1, 64]) {
      siloResults.push(
        await measure(inflight, ms, async () => {
          await q.put(item(n++));
          await q.get();
        }),
      );
    }
    siloResults.push(
      await measure(1, ms, async () => {
        await q.putMany(batch());
        await q.getMany(BATCH);
      }),
    );
    await client.close();
  } finally {
    await silo.stop();
  }
  const redisRun = (fsync: "everysec" | "always") =>
    withRedis(fsync, async (conns) => {
      const w = redisWorkloads(conns);
      return [await measure(1, ms, w.putGet), await measure(64, ms, w.putGet), await measure(1, ms, w.batch)];
    });
  const redis = await redisRun("everysec");
  const redisAlways = await redisRun("always");
  const names = ["put+get, 1 in flight", "put+get, 64 in flight", `putMany+getMany of ${BATCH}`];
  const rows: Row[] = names.map((name, i) => ({
    name,
    silo: siloResults[i]!,
    redis: redis[i]!,
    redisAlways: redisAlways[i]!,
    unit: i < 2 ? "put+get/s" : "items/s",
    perOp: i < 2 ? 1 : BATCH,
  }));

  const fmt = (v: number) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(2));
  console.log(`\nQueue benchmark, ${SECONDS} s per measurement (ratio: silo / Redis appendfsync everysec)\n`);
  console.log("| workload | silo | Redis (everysec) | silo/Redis | silo p50 / p99 ms | Redis p50 / p99 ms | Redis appendfsync always |");
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) {
    const rate = (r: Result) => r.opsPerSec * row.perOp;
    console.log(
      `| ${row.name} | ${fmt(rate(row.silo))} ${row.unit} | ${fmt(rate(row.redis))} | ${(rate(row.silo) / rate(row.redis)).toFixed(2)}× | ` +
        `${fmt(row.silo.p50Ms)} / ${fmt(row.silo.p99Ms)} | ${fmt(row.redis.p50Ms)} / ${fmt(row.redis.p99Ms)} | ` +
        `${fmt(rate(row.redisAlways))} (p50 ${fmt(row.redisAlways.p50Ms)} ms) |`,
    );
  }
}

await main();
