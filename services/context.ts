import type { RootDatabase } from "lmdb";
import type { Registry } from "prom-client";
import type { Clock } from "../lib/clock.js";
import type { AuthStore } from "./auth/store.js";
import type { Readiness } from "./health/readiness.js";
import type { Sqlite } from "./db.js";
import type { DiskReserve } from "./disk-reserve.js";
import type { FileTreeKinds } from "./file-trees.js";
import type { GroupCommit } from "./kv-group-commit.js";
import type { ObjectRegistry } from "./objects/registry.js";
import type { ServerOptions } from "./options.js";

/** What the server hands each storage kind when it registers its routes. */
export interface KindContext {
  registry: ObjectRegistry;
  /** Shared LMDB environment; each kind opens its own named sub-databases. */
  kv: RootDatabase;
  /** Group commit on `kv`: writes of one event-loop turn share one synchronous, fsync'd transaction. */
  commits: GroupCommit;
  /** Shared SQLite metadata database (auth, objects). */
  meta: Sqlite;
  /** Root for a kind's own files (`<home>/data`). */
  dataDir: string;
  options: ServerOptions;
  /** Space kept back for deletes on a full disk (disk-reserve.ts). */
  reserve: DiskReserve;
  /** Time for every TTL, lease, heartbeat and sweep (a TestClock in tests). */
  clock: Clock;
  /** Kinds stored as file trees by the volume machinery (volumes, network file systems). */
  fileTrees: FileTreeKinds;
  /** Where a kind registers its Prometheus metrics (served at `/metrics`). */
  metrics: Registry;
  /** Where a kind registers a check of its own stores (answered at `/readyz`). */
  readiness: Readiness;
  /** Tokens and environments: for a way in other than HTTP (the local block socket), which authenticates as HTTP does. */
  auth: AuthStore;
}
