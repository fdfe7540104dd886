import Database from "better-sqlite3";

export type Sqlite = Database.Database;
export type Statement = Database.Statement;

/** Opens a SQLite database tuned for a durable metadata store (WAL, full fsync on commit). */
export function openSqlite(file: string): Sqlite {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return db;
}
