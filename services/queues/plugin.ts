import type { FastifyPluginAsync } from "fastify";
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

  // Reads expire partitions lazily; this sweep frees the space of partitions nobody reads.
  const sweeper = ctx.clock.setInterval(() => store.sweep(), Math.min(60_000, Math.max(100, options.queuePartitionTtlMs / 4)), { unref: true });
  app.addHook("preClose", async () => {
    sweeper.cancel();
    store.shutdown();
  });
};
