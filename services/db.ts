import { dirname } from "node:path";
import Database from "better-sqlite3";
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
