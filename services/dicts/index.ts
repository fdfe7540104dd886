import type { FastifyPluginAsync } from "fastify";
import { Gauge } from "prom-client";
import { countLongPolls } from "../metrics/long-polls.js";
import type { KindContext } from "../context.js";
import { DictEntries } from "./entries.js";
import { openDictDbs } from "./layout.js";
import { DictLocks } from "./locks.js";
import { dictRoutes } from "./routes.js";

/** The Dict kind: registers "dict" (ids `di-…`), its routes, and the TTL upkeep timers. */
export const dictsPlugin: FastifyPluginAsync<KindContext> = async (app, ctx) => {
  const dbs = openDictDbs(ctx.kv);
  const { commits } = ctx;
  const entries = new DictEntries(dbs, commits, ctx.options.dictEntryTtlMs, ctx.clock);
  const locks = new DictLocks(dbs, commits, ctx.clock);

  ctx.registry.registerKind("dict", {
    prefix: "di",
    async purge(record) {
      await entries.clear(record.id);
      await locks.purge(record.id);
    },
  });
  await dictRoutes(app, { registry: ctx.registry, commits, entries, locks });
  countLongPolls(ctx.metrics, "dict", () => locks.waiting());
  new Gauge({
    name: "silo_dict_entries",
    help: "Dict entries stored over every dict (expired entries count until the sweeper removes them)",
    registers: [ctx.metrics],
    collect() {
      // lmdb types getStats() as {}; entryCount is LMDB's ms_entries of this sub-database.
      this.set((dbs.entries.getStats() as { entryCount: number }).entryCount);
    },
  });

  // Touches are written a moment after the read; expired entries are invisible at once and swept here.
  const ttl = ctx.options.dictEntryTtlMs;
  const upkeep = (what: string, fn: () => Promise<unknown>) => () =>
    void fn().catch((err: unknown) => app.log.error({ err }, `dict ${what} failed`));
  const touchTimer = ctx.clock.setInterval(upkeep("touch flush", () => entries.flushTouches()), Math.max(10, Math.min(1000, ttl / 10)), { unref: true });
  const sweepTimer = ctx.clock.setInterval(upkeep("expiry sweep", () => entries.sweep()), Math.max(50, Math.min(60_000, ttl / 4)), { unref: true });
  app.addHook("preClose", async () => {
    touchTimer.cancel();
    sweepTimer.cancel();
  });
  // After the last request: the server closes LMDB only once every kind's onClose has run.
  app.addHook("onClose", async () => entries.flushTouches());
};
