/**
 * `npm run bench:queue`: silo queues vs Redis lists (LPUSH + BRPOP via ioredis, appendonly yes),
 * both on this machine in the same run. Prints ops/s, latency and the silo/Redis ratio.
 *   put+get  – each worker puts one item and takes one back (a round trip through the queue);
 *              ops/s counts these pairs, latency is the pair's.
 *   batch    – putMany of 100 items then getMany of 100 (Redis: one LPUSH of 100, RPOP count 100);
 *              ops/s counts items.
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

interface Row {
  name: string;
  silo: Awaited<ReturnType<typeof measure>>;
  redis: Awaited<ReturnType<typeof measure>>;
  unit: string;
  perOp: number;
}

async function main(): Promise<void> {
  const silo = await BenchSilo.start();
  // appendfsync stays at Redis's default (everysec): an acknowledged LPUSH may be lost in a crash,
  // where silo answers only after its write is flushed to disk.
  const redisServer = await BenchRedis.start(["--appendonly", "yes"]);
  const rows: Row[] = [];
  try {
    const client = silo.client();
    const q = await client.queues.fromName<ReturnType<typeof item>>("bench", { createIfMissing: true });
    const conns = Array.from({ length: 64 }, () => new Redis({ port: redisServer.port, lazyConnect: false }));
    await Promise.all(conns.map((c) => c.ping()));
    let n = 0;

    for (const inflight of [1, 64]) {
      const s = await measure(inflight, SECONDS * 1000, async () => {
        await q.put(item(n++));
        await q.get();
      });
      const r = await measure(inflight, SECONDS * 1000, async (w) => {
        const c = conns[w]!; // BRPOP blocks its connection: one per worker
        await c.lpush("bench", packr.pack(item(n++)));
        const got = await c.brpopBuffer("bench", 0);
        if (got) packr.unpack(got[1]);
      });
      rows.push({ name: `put+get, ${inflight} in flight`, silo: s, redis: r, unit: "put+get/s", perOp: 1 });
    }

    const batch = () => Array.from({ length: BATCH }, (_, i) => item(i));
    const s = await measure(1, SECONDS * 1000, async () => {
      await q.putMany(batch());
      await q.getMany(BATCH);
    });
    const r = await measure(1, SECONDS * 1000, async () => {
      const c = conns[0]!;
      await c.lpush("bench-batch", ...batch().map((v) => packr.pack(v)));
      const got = await c.rpopBuffer("bench-batch", BATCH);
      for (const b of got ?? []) packr.unpack(b);
    });
    rows.push({ name: `putMany+getMany of ${BATCH}`, silo: s, redis: r, unit: "items/s", perOp: BATCH });

    await client.close();
    conns.forEach((c) => c.disconnect());
  } finally {
    await silo.stop();
    await redisServer.stop();
  }

  const fmt = (v: number) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(2));
  console.log(`\nQueue benchmark (${SECONDS} s per measurement; Redis ${"appendonly yes"})\n`);
  console.log("| workload | silo | Redis | silo/Redis | silo p50 / p99 ms | Redis p50 / p99 ms |");
  console.log("|---|---|---|---|---|---|");
  for (const row of rows) {
    const sRate = row.silo.opsPerSec * row.perOp;
    const rRate = row.redis.opsPerSec * row.perOp;
    console.log(
      `| ${row.name} | ${fmt(sRate)} ${row.unit} | ${fmt(rRate)} ${row.unit} | ${(sRate / rRate).toFixed(2)}× | ` +
        `${fmt(row.silo.p50Ms)} / ${fmt(row.silo.p99Ms)} | ${fmt(row.redis.p50Ms)} / ${fmt(row.redis.p99Ms)} |`,
    );
  }
}

await main();
