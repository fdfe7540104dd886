import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ManifestStore } from "./manifest-store.js";
import type { VolumeGc } from "./gc.js";
import type { ListingCache } from "./listing-cache.js";
import type { LocalPutCounts } from "./local-put-server.js";

const COMMIT_ROUTE = "/v1/volumes/:id/commit";

/** A counter kept elsewhere (by GC, the local put server): re-stated from `read` at each scrape. */
function restatedCounter(registers: Registry[], name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** Volume storage, GC and commit metrics; the store figures are read when scraped. */
export function volumeMetrics(app: FastifyInstance, registry: Registry, store: ManifestStore, gc: VolumeGc, listings: ListingCache): void {
  const registers = [registry];
  // One query serves the four gauges of a scrape (collected one after the other, in one turn).
  let cached: ReturnType<ManifestStore["blockTotals"]> | undefined;
  const totals = () => {
    if (!cached) {
      cached = store.blockTotals();
      setImmediate(() => (cached = undefined));
    }
    return cached;
  };
  new Gauge({
    name: "silo_volume_blocks",
    help: "Volume blocks stored (after dedup), every workspace",
    registers,
    async collect() {
      this.set((await totals()).blocks);
    },
  });
  new Gauge({
    name: "silo_volume_stored_bytes",
    help: "Bytes of the volume blocks stored (after dedup)",
    registers,
    async collect() {
      this.set((await totals()).bytes);
    },
  });
  new Gauge({
    name: "silo_volume_logical_bytes",
    help: "Bytes the stored file rows of every retained version reference (before dedup)",
    registers,
    async collect() {
      this.set((await totals()).logicalBytes);
    },
  });
  new Gauge({
    name: "silo_volume_dedup_ratio",
    help: "Logical bytes over the bytes of referenced blocks (1 when nothing is shared; 0 when nothing is stored)",
    registers,
    async collect() {
      const t = await totals();
      this.set(t.referencedBytes > 0 ? t.logicalBytes / t.referencedBytes : 0);
    },
  });
  const counterOf = (name: string, help: string, read: () => number) => restatedCounter(registers, name, help, read);
  counterOf("silo_volume_gc_runs_total", "Volume GC passes finished", () => gc.totals.passes);
  counterOf("silo_volume_gc_failures_total", "Volume GC passes that failed", () => gc.totals.failedPasses);
  counterOf("silo_volume_gc_blocks_freed_total", "Volume blocks GC deleted", () => gc.totals.blocksFreed);
  counterOf("silo_volume_gc_bytes_freed_total", "Bytes of the volume blocks GC deleted", () => gc.totals.bytesFreed);
  counterOf("silo_volume_listing_cache_hits_total", "Directory listing pages served from memory (no SQLite read, no encoding)", () => listings.hits);
  counterOf("silo_volume_listing_cache_misses_total", "Directory listing pages read from SQLite (msgpack callers; JSON callers bypass the cache)", () => listings.misses);
  new Gauge({
    name: "silo_volume_listing_cache_bytes",
    help: "Bytes the directory listing cache holds (of --volume-listing-cache-mib)",
    registers,
    collect() {
      this.set(listings.size.bytes);
    },
  });
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

/** Local block writes (local-put-server.ts): how much `volume put` passed as a file descriptor instead of over HTTP. */
export function localPutMetrics(registry: Registry, counts: LocalPutCounts): void {
  const registers = [registry];
  const counterOf = (name: string, help: string, read: () => number) => restatedCounter(registers, name, help, read);
  counterOf("silo_volume_local_put_requests_total", "Local block write requests answered ok (a range of a file passed by its fd)", () => counts.requests);
  counterOf("silo_volume_local_put_bytes_total", "Bytes of the ranges local block writes covered", () => counts.bytes);
  counterOf("silo_volume_local_put_blocks_written_total", "Blocks local block writes had to store (the others were held already)", () => counts.blocksWritten);
  counterOf("silo_volume_local_put_bytes_written_total", "Bytes of the blob files local block writes stored", () => counts.bytesWritten);
  counterOf("silo_volume_local_put_bytes_direct_total", "Of those bytes, the ones written with O_DIRECT (no page-cache copy)", () => counts.bytesDirect);
  counterOf("silo_volume_local_put_refused_total", "Local block write requests refused (any reason)", () => counts.refused);
}
