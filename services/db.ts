import Database from "better-sqlite3";

export type Sqlite = Database.Database;
export type Statement = Database.Statement;

/** Opens a SQLite database tuned for a durable metadata store (WAL, full fsync on commit). */
export function openSqlite(file: string): Sqlite {
  const db = new Database(file);
  // One server per home (home-lock.ts): an exclusive lock lets WAL mode run without its shared-memory
  // file, which SQLite would otherwise have to create at open – impossible on a full disk.
  db.pragma("locking_mode = EXCLUSIVE");
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return db;
}
