import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { open as openLmdb } from "lmdb";
import { Registry, collectDefaultMetrics } from "prom-client";
import { authenticatePlugin } from "./auth/authenticate.js";
import { environmentRoutes } from "./auth/environment-routes.js";
import { authRoutes } from "./auth/routes.js";
import { AuthStore, DEFAULT_ENVIRONMENT } from "./auth/store.js";
import type { KindContext } from "./context.js";
import { openSqlite } from "./db.js";
import { codecPlugin } from "./http/codec.js";
import { Readiness } from "./health/readiness.js";
import { healthRoutes } from "./health/routes.js";
import { dashboardPlugin } from "./http/dashboard.js";
import { installErrorHandler } from "./http/error-handler.js";
import { installValidation, parseQueryString } from "./http/validation.js";
import { clientErrorHandler, frameworkErrors } from "./http/framework-errors.js";
import { openapiPlugin } from "./http/openapi.js";
import { httpMetricsPlugin } from "./metrics/http-metrics.js";
import { metricsRoutes } from "./metrics/routes.js";
import { objectMetrics } from "./objects/object-metrics.js";
import { ObjectRegistry } from "./objects/registry.js";
import { freeBytes } from "./disk-full.js";
import { DiskReserve } from "./disk-reserve.js";
import { objectRoutes } from "./objects/routes.js";
import type { ServerOptions } from "./options.js";
import { type Clock, systemClock } from "../lib/clock.js";
import { KINDS } from "./kinds.js";
import { FileTreeKinds } from "./file-trees.js";
import { GroupCommit } from "./kv-group-commit.js";

export interface SiloApp {
  app: FastifyInstance;
  auth: AuthStore;
  /** True if the server started on a full disk (it serves; writes that add data answer 507). */
  diskFull: boolean;
  /** Every Prometheus metric of this server (also served by `--metrics-listen`). */
  metrics: Registry;
  /** Closes the app (every kind's hooks run), then the shared stores, in that order. */
  shutdown(): Promise<void>;
}

/** What a caller may swap for tests; the defaults are the real things. */
export interface AppDeps {
  clock?: Clock;
}

/** Wires the parts together; no logic of its own. */
export async function buildApp(options: ServerOptions, deps: AppDeps = {}): Promise<SiloApp> {
  const clock = deps.clock ?? systemClock;
  const dataDir = join(options.home, "data");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  restrictModes(options.home, dataDir);
  // On a full disk, give the reserve up first: opening the stores and deleting need a little room.
  const reserve = new DiskReserve(dataDir);
  const diskFull = freeBytes(dataDir) < reserve.bytes;
  if (diskFull) reserve.release();
  else reserve.refill();

  const app = Fastify({
    logger: { level: options.logLevel },
    // Per-request lines only when debugging: at thousands of requests a second they cost more than the work.
    logController: new LogController({ disableRequestLogging: options.logLevel !== "debug" && options.logLevel !== "trace" }),
    bodyLimit: options.bodyLimit,
    // Over-long path parameters are refused (414) before routing; names are at most 64 chars, ids shorter.
    routerOptions: { maxParamLength: 512, querystringParser: parseQueryString },
    frameworkErrors: frameworkErrors(() => auth),
    clientErrorHandler,
  });
  const meta = openSqlite(join(dataDir, "meta.sqlite"));
  const kv = openLmdb({ path: join(dataDir, "kv"), maxDbs: 64, mapSize: 64 * 1024 ** 3 });
  const auth = new AuthStore(meta);
  const registry = new ObjectRegistry(meta, options.ephemeralTimeoutMs, clock, reserve);
  registry.checkEnvironmentsWith((ws, env) => env === DEFAULT_ENVIRONMENT || auth.hasEnvironment(ws, env));
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const readiness = new Readiness(options.home, options.readyMinFreeBytes);
  readiness.add("meta", () => void meta.prepare("SELECT 1").get());
  // A read of a key nobody writes: throws once the environment is closed or broken.
  readiness.add("kv", () => void kv.get("\u0000silo-readiness"));
  const ctx: KindContext = {
    registry,
    kv,
    commits: new GroupCommit(kv, reserve),
    meta,
    dataDir,
    options,
    reserve,
    clock,
    fileTrees: new FileTreeKinds(registry),
    metrics,
    readiness,
    auth,
  };
  objectMetrics(metrics, registry);

  installValidation(app);
  installErrorHandler(app, { dataDir });
  // Not encapsulated: the description must see every route registered after it.
  await openapiPlugin(app);
  await app.register(codecPlugin, { bodyLimit: options.bodyLimit });
  await app.register(httpMetricsPlugin, { registry: metrics });
  await app.register(authenticatePlugin, { store: auth });
  await app.register(healthRoutes, { readiness });
  await app.register(metricsRoutes, { registry: metrics });
  await app.register(dashboardPlugin);
  await app.register(authRoutes, { store: auth });
  await app.register(environmentRoutes, { store: auth, registry, meta });
  await app.register(objectRoutes, { registry, heartbeatIntervalMs: Math.max(100, Math.floor(options.ephemeralTimeoutMs / 3)) });
  for (const kind of KINDS) await app.register(kind, ctx);

  const reaper = clock.setInterval(
    () => void registry.reapEphemeral().catch((err) => app.log.error({ err }, "ephemeral reaper failed")),
    Math.min(30_000, Math.max(50, options.ephemeralTimeoutMs / 4)),
    { unref: true },
  );
  // Takes the disk reserve again once deletes have made room (a no-op while it is held).
  const refill = setInterval(() => reserve.refill(), 5_000);
  refill.unref();
  app.addHook("preClose", async () => {
    readiness.markClosing();
    reaper.cancel();
    clearInterval(refill);
  });
  await app.ready();
  await registry.resumePurges();
  // The shared stores close after app.close(): fastify runs the root's onClose hooks before a
  // kind's, so closing them in a hook would pull LMDB and SQLite from under a kind's last writes.
  const shutdown = async () => {
    await app.close();
    await kv.close();
    meta.close();
  };
  return { app, auth, diskFull, metrics, shutdown };
}

/**
 * The home and data directory are 0700 and the stores' files 0600, also in a home made by an
 * older server (new files get these modes from the server's umask).
 */
function restrictModes(home: string, dataDir: string): void {
  const files = ["meta.sqlite", "meta.sqlite-wal", "volumes.sqlite", "volumes.sqlite-wal", "kv/data.mdb", "kv/lock.mdb", "secrets.key"];
  for (const [path, mode] of [[home, 0o700], [dataDir, 0o700], [join(dataDir, "kv"), 0o700], ...files.map((f) => [join(dataDir, f), 0o600] as const)] as const) {
    try {
      if (existsSync(path)) chmodSync(path, mode);
    } catch {
      // Not ours to change (e.g. a home owned by another user): the umask still covers new files.
    }
  }
}
