import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { fsyncPath } from "../lib/fsync-path.js";
import { CoalescedSyncs } from "./coalesced-syncs.js";
import { freeBytes } from "./disk-full.js";

export type Sqlite = Database.Database;
export type Statement = Database.Statement;

/** Every commit fsyncs the WAL before it returns: a committed transaction survives a power loss. */
const DURABLE_SYNC = "FULL";

/**
 * Runs `fn` as one transaction whose commit does not fsync the WAL (`synchronous = NORMAL` for
 * it alone). Only for writes nothing acknowledged rests on: they survive a crash of the process,
 * and a power loss only if a later, fully synced commit follows (the WAL is written in order).
 */
export function unsyncedTransaction<T>(db: Sqlite, fn: () => T): T {
  db.pragma("synchronous = NORMAL");
  try {
    return db.transaction(fn)();
  } finally {
    db.pragma(`synchronous = ${DURABLE_SYNC}`);
  }
}

/**
 * Durable transactions whose WAL fsync runs in the thread pool, not on the event loop: each is
 * committed without a sync (`synchronous = NORMAL`), then the WAL file is fdatasync'd before the
 * caller is answered, so an answered transaction is on disk as with FULL. In WAL mode NORMAL
 * differs from FULL only by that per-commit sync: SQLite still syncs the WAL before each
 * checkpoint, the database after it, and the WAL header when the file is reused. Commits that
 * finish while a sync runs share the next one. A database not in WAL mode (in memory) commits
 * as usual.
 */
export class OffLoopCommits {
  private readonly wal: string | undefined;
  private readonly syncs: CoalescedSyncs;

  /** `syncFile` fdatasyncs a file (a test holds it). */
  constructor(
    private readonly db: Sqlite,
    syncFile: (path: string) => Promise<void> = (path) => fsyncPath(path, true),
  ) {
    this.syncs = new CoalescedSyncs(syncFile);
    // Resolved now, as SQLite resolved it at open: a later chdir must not point the sync elsewhere.
    this.wal = !db.memory && db.pragma("journal_mode", { simple: true }) === "wal" ? resolve(`${db.name}-wal`) : undefined;
  }

  async run<T>(fn: () => T): Promise<T> {
    if (this.wal === undefined) return this.db.transaction(fn)();
    const out = unsyncedTransaction(this.db, fn);
    // Opened per sync: SQLite keeps the WAL file (one inode) while the database is open.
    await this.syncs.sync(this.wal);
    return out;
  }
}

/** Opens a SQLite database tuned for a durable metadata store (WAL, full fsync on commit). */
export function openSqlite(file: string): Sqlite {
  const db = new Database(file);
  // On a full disk, SQLite could not create WAL mode's shared-memory file at open. One server per
  // home (home-lock.ts) makes an exclusive lock safe, and with it WAL mode needs no such file.
  // Only then: otherwise other readers (sqlite3, tests) may open the file beside the server.
  if (freeBytes(dirname(file)) < 1024 * 1024) db.pragma("locking_mode = EXCLUSIVE");
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${DURABLE_SYNC}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return db;
}
