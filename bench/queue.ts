/**
 * `npm run bench:queue`: silo queues vs Redis lists (LPUSH + BRPOP via ioredis, appendonly yes),
 * all on this machine in the same run. Prints ops/s, latency and the silo/Redis ratio.
 *   put+get  – each worker puts one item and takes one back (a round trip through the queue);
 *              ops/s counts these pairs, latency is the pair's.
 *   batch    – putMany of 100 items then getMany of 100 (Redis: one LPUSH of 100, RPOP count 100);
 *              ops/s counts items.
 * Redis runs with appendonly yes and its default appendfsync everysec (the ratio's peer: an
 * acknowledged write may be lost in a crash), and a second Redis with appendfsync always, which
 * like silo answers only after the write is on disk (shown for reference).
 * The systems take turns, ROUNDS times per workload, and the median round counts, so that load
 * from other processes on the machine hits them alike. BENCH_SECONDS (default 2) is one turn.
 */
import { Redis } from "ioredis";
import { Packr } from "msgpackr";
import { BenchRedis } from "./lib/redis-server.js";
import { BenchSilo } from "./lib/silo-server.js";
import { measure } from "./lib/measure.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BATCH = 100;
const item = (i: number) => ({ id: i, at: Date.now(), payload: "x".repeat(64) });
const batch = () => Array.from({ length: BATCH }, (_, i) => item(i));
const packr = new Packr({ structuredClone: true });

type Result = Awaited<ReturnType<typeof measure>>;
/** One system's side of the workloads: a put+get pair for worker w, and one batch round. */
interface Workloads {
  putGet(worker: number): Promise<void>;
  batch(): Promise<void>;
}

async function siloWorkloads(silo: BenchSilo): Promise<Workloads & { close(): Promise<void> }> {
  const client = silo.client();
  const q = await client.queues.fromName<ReturnType<typeof item>>("bench", { createIfMissing: true });
  let n = 0;
  return {
    putGet: async () => {
      await q.put(item(n++));
      await q.get();
    },
    batch: async () => {
      await q.putMany(batch());
      await q.getMany(BATCH);
    },
    close: () => client.close(),
  };
}

/** On 64 connections: BRPOP blocks its connection, so each worker has its own. */
async function redisWorkloads(server: BenchRedis): Promise<Workloads & { close(): Promise<void> }> {
  const conns = Array.from({ length: 64 }, () => new Redis({ port: server.port }));
  await Promise.all(conns.map((c) => c.ping()));
  let n = 0;
  return {
    putGet: async (w) => {
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
    close: async () => conns.forEach((c) => c.disconnect()),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const medianResult = (rs: Result[]): Result => ({
  opsPerSec: median(rs.map((r) => r.opsPerSec)),
  p50Ms: median(rs.map((r) => r.p50Ms)),
  p99Ms: median(rs.map((r) => r.p99Ms)),
});

async function main(): Promise<void> {
  const silo = await BenchSilo.start();
  const redis = await BenchRedis.start(["--appendonly", "yes", "--appendfsync", "everysec"]);
  const redisAlways = await BenchRedis.start(["--appendonly", "yes", "--appendfsync", "always"]);
  const systems = { silo: await siloWorkloads(silo), redis: await redisWorkloads(redis), redisAlways: await redisWorkloads(redisAlways) };
  const workloads = [
    { name: "put+get, 1 in flight", unit: "put+get/s", perOp: 1, run: (w: Workloads) => measure(1, SECONDS * 1000, (i) => w.putGet(i)) },
    { name: "put+get, 64 in flight", unit: "put+get/s", perOp: 1, run: (w: Workloads) => measure(64, SECONDS * 1000, (i) => w.putGet(i)) },
    { name: `putMany+getMany of ${BATCH}`, unit: "items/s", perOp: BATCH, run: (w: Workloads) => measure(1, SECONDS * 1000, () => w.batch()) },
  ];
  const rows = [];
  try {
    for (const workload of workloads) {
      const results: Record<keyof typeof systems, Result[]> = { silo: [], redis: [], redisAlways: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of Object.keys(systems) as Array<keyof typeof systems>) results[name].push(await workload.run(systems[name]));
      }
      rows.push({ ...workload, silo: medianResult(results.silo), redis: medianResult(results.redis), redisAlways: medianResult(results.redisAlways) });
    }
  } finally {
    await Promise.all(Object.values(systems).map((s) => s.close()));
    await Promise.all([silo.stop(), redis.stop(), redisAlways.stop()]);
  }

  const fmt = (v: number) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(2));
  console.log(`\nQueue benchmark: median of ${ROUNDS} turns of ${SECONDS} s (ratio: silo / Redis appendfsync everysec)\n`);
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
