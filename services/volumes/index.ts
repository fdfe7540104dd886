import { join } from "node:path";
import type { FastifyPluginAsync } from "fastify";
import { Counter, Gauge, Histogram } from "prom-client";
import { openBlobStore } from "../blobs/index.js";
import type { KindContext } from "../context.js";
import { openSqlite } from "../db.js";
import { invalid } from "../errors.js";
import { pinBlobLocation } from "./blob-location.js";
import { BlockIndex } from "./block-index.js";
import { blockRoutes } from "./block-routes.js";
import { fileRoutes } from "./file-routes.js";
import { VolumeGc } from "./gc.js";
import { KeyLock } from "./key-lock.js";
import { ManifestStore } from "./manifest-store.js";
import { manifestRoutes } from "./manifest-routes.js";
import { pinRoutes } from "./pin-routes.js";
import { PinStore } from "./pin-store.js";
import { DEFAULT_INODE_LIMIT, KIND, VolumeService } from "./volume-service.js";

const MAX_INODE_LIMIT = 1_000_000_000;

function normalizeOptions(options: Record<string, unknown>): Record<string, unknown> {
  const inodeLimit = options.inodeLimit ?? DEFAULT_INODE_LIMIT;
  if (typeof inodeLimit !== "number" || !Number.isInteger(inodeLimit) || inodeLimit < 1 || inodeLimit > MAX_INODE_LIMIT) {
    throw invalid(`inodeLimit must be a whole number from 1 to ${MAX_INODE_LIMIT}, got ${JSON.stringify(options.inodeLimit)}`);
  }
  return { inodeLimit };
}

/**
 * Volumes: versioned file trees. The manifest and block index live in their own SQLite file
 * (`<dataDir>/volumes.sqlite`), block bytes in the blob store (`--blobs`: local files or an S3
 * bucket); a timer runs garbage collection, which keeps every version a live pin (a mount) holds.
 */
export const volumesPlugin: FastifyPluginAsync<KindContext> = async (app, ctx) => {
  const db = openSqlite(join(ctx.dataDir, "volumes.sqlite"));
  // Manifest indexes of big volumes: keep their hot pages in memory (64 MiB).
  db.pragma("cache_size = -65536");
  const blocks = new BlockIndex(db);
  const store = new ManifestStore(db, blocks);
  // Opened (and so validated) first: a malformed --blobs must not be pinned as this home's location.
  const blobs = await openBlobStore(ctx.options, ctx.dataDir);
  pinBlobLocation(db, ctx.options.blobs);
  const blockLock = new KeyLock();
  const pins = new PinStore(db, ctx.options.volumePinTtlMs);
  const gc = new VolumeGc(
    store,
    blocks,
    pins,
    blobs,
    { retentionMs: ctx.options.volumeRetentionMs, blockGraceMs: ctx.options.volumeBlockGraceMs },
    app.log,
    blockLock,
  );
  const volumes = new VolumeService(ctx.registry, store, blocks, blobs, blockLock);

  ctx.registry.registerKind(KIND, {
    prefix: "vo",
    normalizeOptions,
    purge: (record) => gc.purge(record.id, record.workspaceId),
  });
  await app.register(blockRoutes, { volumes });
  await app.register(manifestRoutes, { volumes });
  await app.register(fileRoutes, { volumes });
  await app.register(pinRoutes, { volumes, pins });
  volumeMetrics(app, ctx, blocks, gc);
  ctx.readiness.add("volumes", () => void db.prepare("SELECT 1").get());

  const timer = setInterval(
    () => void gc.run().catch((err) => app.log.error({ err }, "volume GC failed")),
    ctx.options.volumeGcIntervalMs,
  );
  timer.unref();
  app.addHook("onClose", async () => {
    clearInterval(timer);
    await gc.settled();
    db.close();
  });
};

const COMMIT_ROUTE = "/v1/volumes/:id/commit";

/** Volume storage, GC and commit metrics; the store figures are read when scraped. */
function volumeMetrics(app: Parameters<FastifyPluginAsync<KindContext>>[0], ctx: KindContext, blocks: BlockIndex, gc: VolumeGc): void {
  const registers = [ctx.metrics];
  const totals = () => blocks.totals();
  new Gauge({ name: "silo_volume_blocks", help: "Volume blocks stored (after dedup), every workspace", registers, collect() { this.set(totals().blocks); } });
  new Gauge({ name: "silo_volume_stored_bytes", help: "Bytes of the volume blocks stored (after dedup)", registers, collect() { this.set(totals().bytes); } });
  new Gauge({
    name: "silo_volume_logical_bytes",
    help: "Bytes the stored file rows of every retained version reference (before dedup)",
    registers,
    collect() {
      this.set(totals().logicalBytes);
    },
  });
  new Gauge({
    name: "silo_volume_dedup_ratio",
    help: "Logical bytes over the bytes of referenced blocks (1 when nothing is shared; 0 when nothing is stored)",
    registers,
    collect() {
      const t = totals();
      this.set(t.referencedBytes > 0 ? t.logicalBytes / t.referencedBytes : 0);
    },
  });
  const counterOf = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        // A counter kept by the GC itself: re-stated at each scrape.
        this.reset();
        this.inc(read());
      },
    });
  counterOf("silo_volume_gc_runs_total", "Volume GC passes finished", () => gc.totals.passes);
  counterOf("silo_volume_gc_failures_total", "Volume GC passes that failed", () => gc.totals.failedPasses);
  counterOf("silo_volume_gc_blocks_freed_total", "Volume blocks GC deleted", () => gc.totals.blocksFreed);
  counterOf("silo_volume_gc_bytes_freed_total", "Bytes of the volume blocks GC deleted", () => gc.totals.bytesFreed);
  const commits = new Histogram({
    name: "silo_volume_commit_duration_seconds",
    help: "Volume commit requests, from received to answered, by outcome (ok, or the error status)",
    labelNames: ["outcome"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  app.addHook("onResponse", async (req, reply) => {
    if (req.routeOptions.url !== COMMIT_ROUTE) return;
    commits.observe({ outcome: reply.statusCode < 400 ? "ok" : String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
}
