import type { Migration } from "../sqlite-migrations.js";

/**
 * The schema history of volumes.sqlite, oldest first; `migrate(db, "volumes", VOLUME_MIGRATIONS)`
 * applies what a home lacks. Never edit a released step: add one.
 */
export const VOLUME_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "the schema as silo wrote it before schema versions (manifest rows, versions, state, block index, pins, blob location)",
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS blocks (
          workspace TEXT NOT NULL, hash TEXT NOT NULL, size INTEGER NOT NULL, refs INTEGER NOT NULL DEFAULT 0,
          touched_at INTEGER NOT NULL, data BLOB, PRIMARY KEY (workspace, hash));
        CREATE INDEX IF NOT EXISTS blocks_collectable ON blocks (workspace, refs, touched_at);
        CREATE TABLE IF NOT EXISTS entries (
          volume TEXT NOT NULL, path TEXT NOT NULL, valid_from INTEGER NOT NULL, valid_to INTEGER NOT NULL,
          parent TEXT NOT NULL, kind TEXT NOT NULL, mode INTEGER NOT NULL, size INTEGER NOT NULL,
          mtime INTEGER NOT NULL, blocks BLOB, link_target TEXT);
        CREATE UNIQUE INDEX IF NOT EXISTS entries_by_path ON entries (volume, path, valid_from);
        CREATE INDEX IF NOT EXISTS entries_by_to ON entries (volume, valid_to, path);
        CREATE INDEX IF NOT EXISTS entries_by_from ON entries (volume, valid_from);
        CREATE INDEX IF NOT EXISTS entries_by_parent ON entries (volume, parent, valid_to, path);
        CREATE TABLE IF NOT EXISTS versions (
          volume TEXT NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL,
          PRIMARY KEY (volume, version)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS volume_state (
          volume TEXT PRIMARY KEY, workspace TEXT NOT NULL, latest INTEGER NOT NULL, oldest INTEGER NOT NULL,
          inodes INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS blob_location (id INTEGER PRIMARY KEY CHECK (id = 1), location TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS version_pins (
          volume TEXT NOT NULL, pin_id TEXT NOT NULL, version INTEGER NOT NULL, expires_at INTEGER NOT NULL,
          PRIMARY KEY (volume, pin_id)) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    name: "versions record the token that committed them and a note (history, restore, fork)",
    up(db) {
      db.exec(`
        ALTER TABLE versions ADD COLUMN token_id TEXT;
        ALTER TABLE versions ADD COLUMN note TEXT;
      `);
    },
  },
  {
    version: 3,
    name: "manifest rows keep POSIX metadata: owner, group, ns times, device number, hard-link id, extended attributes (NULL: as before)",
    up(db) {
      // Nullable: rows written before read back without the fields (uid/gid 0, mtime for every time).
      // ns times are decimal text: better-sqlite3 reads integers as JS numbers, which lose ns past 2^53.
      db.exec(`
        ALTER TABLE entries ADD COLUMN uid INTEGER;
        ALTER TABLE entries ADD COLUMN gid INTEGER;
        ALTER TABLE entries ADD COLUMN mtime_ns TEXT;
        ALTER TABLE entries ADD COLUMN atime_ns TEXT;
        ALTER TABLE entries ADD COLUMN ctime_ns TEXT;
        ALTER TABLE entries ADD COLUMN rdev INTEGER;
        ALTER TABLE entries ADD COLUMN link_id TEXT;
        ALTER TABLE entries ADD COLUMN xattrs TEXT;
      `);
    },
  },
  {
    version: 4,
    name: "hard-link ids are indexed: a lazily loading mount finds every name of a link without reading the tree",
    up(db) {
      // Partial: only the few rows of hard-linked nodes carry a link id.
      db.exec("CREATE INDEX IF NOT EXISTS entries_by_link ON entries (volume, link_id, valid_to) WHERE link_id IS NOT NULL");
    },
  },
];
