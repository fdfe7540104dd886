import { join } from "node:path";
import type { FastifyPluginAsync } from "fastify";
import { openBlobStore } from "../blobs/index.js";
import type { KindContext } from "../context.js";
import { openSqlite } from "../db.js";
import { normalizeTreeOptions } from "../file-trees.js";
import { blockRoutes } from "./block-routes.js";
import { fuseFdAddonIfBuilt } from "../../lib/native-addon.js";
import { LOCAL_BLOCKS, LOCAL_BLOCKS_ROUTE, LOCAL_PUT, type LocalBlocksInfo } from "../../protocol/local-blocks.js";
import { LocalBlockServer } from "./local-block-server.js";
import { LocalPutServer } from "./local-put-server.js";
import { fileRoutes } from "./file-routes.js";
import { VolumeGc } from "./gc.js";
import { KeyLock } from "./key-lock.js";
import { ListingCache } from "./listing-cache.js";
import { manifestRoutes } from "./manifest-routes.js";
import { pinRoutes } from "./pin-routes.js";
import { SqliteManifestStore } from "./sqlite-manifest-store.js";
import { versionRoutes } from "./version-routes.js";
import { localPutMetrics, volumeMetrics } from "./volume-metrics.js";
import { KIND, VolumeStore } from "./volume-store.js";

/**
 * Volumes: versioned file trees. The manifest and block index live in their own SQLite file
 * (`<dataDir>/volumes.sqlite`), block bytes in the blob store (`--blobs`: local files or an S3
 * bucket); a timer runs garbage collection, which keeps every version a live pin (a mount) holds.
 */
export const volumesPlugin: FastifyPluginAsync<KindContext> = async (app, ctx) => {
  const db = openSqlite(join(ctx.dataDir, "volumes.sqlite"));
  // Manifest indexes of big volumes: keep their hot pages in memory (64 MiB).
  db.pragma("cache_size = -65536");
  const store = new SqliteManifestStore(db);
  // Opened (and so validated) first: a malformed --blobs must not be pinned as this home's location.
  const blobs = await openBlobStore(ctx.options, ctx.dataDir);
  await store.pinBlobLocation(ctx.options.blobs.replace(/\/+$/, ""));
  const blockLock = new KeyLock();
  const gc = new VolumeGc(
    store,
    blobs,
    { retentionMs: ctx.options.volumeRetentionMs, blockGraceMs: ctx.options.volumeBlockGraceMs },
    app.log,
    blockLock,
  );
  const listings = new ListingCache(ctx.options.volumeListingCacheBytes);
  const volumes = new VolumeStore(ctx.registry, ctx.fileTrees.all, store, blobs, blockLock, ctx.options.volumePinTtlMs, ctx.clock);

  // This store keeps the trees of every file-tree kind (network file systems too): their ids
  // are served by these routes, and it purges them.
  ctx.fileTrees.servedBy((record) => {
    listings.dropVolume(record.id);
    return gc.purge(record.id, record.workspaceId, ctx.clock.now());
  });
  ctx.fileTrees.register(KIND, { prefix: "vo", normalizeOptions: normalizeTreeOptions });
  // Local block reads: blob files passed over a unix socket to clients on this host (local blobs only).
  const localBlocks =
    ctx.options.localBlocks && ctx.options.blobs === "local"
      ? await LocalBlockServer.start(join(ctx.options.home, LOCAL_BLOCKS.socketPath), fuseFdAddonIfBuilt(), ctx.auth, volumes, app.log)
      : undefined;
  // Local block writes: a `volume put` on this host passes its source file's fd (local-put-server.ts).
  const localPut = localBlocks
    ? await LocalPutServer.start(join(ctx.options.home, LOCAL_PUT.socketPath), localBlocks.instance, fuseFdAddonIfBuilt(), {
        auth: ctx.auth,
        volumes,
        dataDir: ctx.dataDir,
        log: app.log,
      })
    : undefined;
  app.get(LOCAL_BLOCKS_ROUTE, async (): Promise<LocalBlocksInfo> => (localBlocks ? { ...localBlocks.info, ...(localPut ? { putSocket: localPut.path } : {}) } : {}));
  await app.register(blockRoutes, { volumes });
  await app.register(manifestRoutes, { volumes });
  await app.register(fileRoutes, { volumes, listings });
  await app.register(pinRoutes, { volumes });
  await app.register(versionRoutes, { volumes });
  volumeMetrics(app, ctx.metrics, store, gc, listings);
  if (localPut) localPutMetrics(ctx.metrics, localPut.counts);
  ctx.readiness.add("volumes", () => store.ping());

  const timer = ctx.clock.setInterval(
    () => void gc.run(ctx.clock.now()).catch((err) => app.log.error({ err }, "volume GC failed")),
    ctx.options.volumeGcIntervalMs,
    { unref: true },
  );
  app.addHook("onClose", async () => {
    await localPut?.close();
    await localBlocks?.close();
    timer.cancel();
    await gc.settled();
    store.close();
  });
};
