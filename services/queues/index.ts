import type { FastifyPluginAsync } from "fastify";
import { Gauge } from "prom-client";
import { countLongPolls } from "../metrics/long-polls.js";
import type { KindContext } from "../context.js";
import { queueRoutes } from "./routes.js";
import { QueueStore } from "./store.js";

/** Queues: partitioned FIFO queues with blocking get/put on LMDB (kind "queue", ids `qu-…`). */
export const queuesPlugin: FastifyPluginAsync<KindContext> = async (app, ctx) => {
  const { options } = ctx;
  const store = new QueueStore(ctx.kv, ctx.commits, {
    maxPartitions: options.queueMaxPartitions,
    leaseMs: options.queueLeaseMs,
    onError: (err) => app.log.error({ err }, "queue write failed"),
    clock: ctx.clock,
  });
  ctx.registry.registerKind("queue", {
    prefix: "qu",
    purge: (record) => store.purge(record.id),
  });
  queueRoutes(app, {
    registry: ctx.registry,
    store,
    defaultTtlMs: options.queuePartitionTtlMs,
    leaseMs: options.queueLeaseMs,
    testHooks: options.testHooks,
  });

  // Read from the in-memory index when scraped: nothing is counted on the hot path. Every named
  // queue has a series (0 when empty), so a dashboard's line does not vanish when a queue drains;
  // ephemeral queues only while they hold items, so short-lived ones do not pile up series.
  // One reading serves both gauges of a scrape (they are collected one after the other, in one turn).
  let reading: Array<{ queue: string; name: string; items: number; partitions: number }> | undefined;
  const rows = () => {
    if (reading) return reading;
    const depths = new Map(store.depths().map((d) => [d.queueId, d]));
    const out = [];
    for (const r of ctx.registry.allOfKind("queue")) {
      const d = depths.get(r.id) ?? { items: 0, partitions: 0 };
      if (r.name !== null || d.items > 0) out.push({ queue: r.id, name: r.name ?? "", items: d.items, partitions: d.partitions });
    }
    reading = out;
    setImmediate(() => (reading = undefined));
    return out;
  };
  const perQueue = (read: (d: { items: number; partitions: number }) => number) =>
    function (this: Gauge<"queue" | "name">) {
      this.reset();
      for (const r of rows()) this.set({ queue: r.queue, name: r.name }, read(r));
    };
  new Gauge({
    name: "silo_queue_items",
    help: "Items stored per queue (all partitions)",
    labelNames: ["queue", "name"] as const,
    registers: [ctx.metrics],
    collect: perQueue((d) => d.items),
  });
  new Gauge({
    name: "silo_queue_partitions",
    help: "Partitions holding items or metadata, per queue",
    labelNames: ["queue", "name"] as const,
    registers: [ctx.metrics],
    collect: perQueue((d) => d.partitions),
  });
  countLongPolls(ctx.metrics, "queue", () => store.waiting());

  // Reads expire partitions lazily; this sweep frees the space of partitions nobody reads.
  const sweeper = ctx.clock.setInterval(() => store.sweep(), Math.min(60_000, Math.max(100, options.queuePartitionTtlMs / 4)), { unref: true });
  app.addHook("preClose", async () => {
    sweeper.cancel();
    store.shutdown();
  });
};
