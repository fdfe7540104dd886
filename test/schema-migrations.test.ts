import { rmSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { type Migration, migrate, schemaVersion } from "../services/sqlite-migrations.js";
import { VOLUME_MIGRATIONS } from "../services/volumes/sqlite-schema.js";
import { SiloServer } from "./helpers/silo-server.js";
import { readAll, sha256 } from "./helpers/volume-data.js";

const dirs: string[] = [];
function tempDb(): Database.Database {
  const dir = mkdtempSync(join(tmpdir(), "silo-migrate-"));
  dirs.push(dir);
  return new Database(join(dir, "t.sqlite"));
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("migrate", () => {
  const steps: Migration[] = [
    { version: 1, name: "t", up: (db) => db.exec("CREATE TABLE IF NOT EXISTS t (a INTEGER)") },
    { version: 2, name: "t.b", up: (db) => db.exec("ALTER TABLE t ADD COLUMN b TEXT") },
  ];

  it("applies the missing steps in order, once, and records the version per component", () => {
    const db = tempDb();
    expect(migrate(db, "x", steps.slice(0, 1))).toBe(0);
    db.prepare("INSERT INTO t (a) VALUES (1)").run();
    expect(migrate(db, "x", steps)).toBe(1);
    expect(migrate(db, "x", steps)).toBe(2);
    expect(schemaVersion(db, "x")).toBe(2);
    expect(schemaVersion(db, "other")).toBe(0);
    expect(db.prepare("SELECT a, b FROM t").all()).toEqual([{ a: 1, b: null }]);
  });

  it("a failing step changes nothing and the next start retries it", () => {
    const db = tempDb();
    migrate(db, "x", steps.slice(0, 1));
    const broken: Migration = {
      version: 2,
      name: "half done",
      up: (d) => {
        d.exec("ALTER TABLE t ADD COLUMN b TEXT");
        throw new Error("disk on fire");
      },
    };
    expect(() => migrate(db, "x", [steps[0]!, broken])).toThrow(/disk on fire/);
    expect(schemaVersion(db, "x")).toBe(1);
    expect(db.prepare("SELECT * FROM t").columns().map((c) => c.name)).toEqual(["a"]);
    migrate(db, "x", steps);
    expect(schemaVersion(db, "x")).toBe(2);
  });

  it("refuses a home written by a newer schema, and misnumbered steps", () => {
    const db = tempDb();
    migrate(db, "x", steps);
    expect(() => migrate(db, "x", steps.slice(0, 1))).toThrow(/newer than this silo knows/);
    expect(() => migrate(tempDb(), "y", [steps[1]!])).toThrow(/numbered/);
  });

  it("volumes: every step applies to an empty database", () => {
    const db = tempDb();
    migrate(db, "volumes", VOLUME_MIGRATIONS);
    expect(schemaVersion(db, "volumes")).toBe(VOLUME_MIGRATIONS.length);
  });
});

/**
 * volumes.sqlite exactly as the release before schema versions wrote it (services/volumes/
 * manifest-store.ts, block-index.ts, pin-store.ts and blob-location.ts of that release).
 */
const PREVIOUS_RELEASE_DDL = `
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
`;
const OPEN = Number.MAX_SAFE_INTEGER;

/**
 * Stops `server` with volume "old" made, and opens its home's volumes.sqlite emptied, for the
 * test to write as an older release left it (the object registry stays as it is).
 */
async function homeWithOldManifest(server: SiloServer): Promise<{ id: string; ws: string; dataDir: string; db: Database.Database }> {
  const vol = await server.client().volumes.fromName("old", { createIfMissing: true });
  const { id } = await vol.info();
  await server.stop();
  const dataDir = join(server.home, "data");
  const meta = new Database(join(dataDir, "meta.sqlite"), { readonly: true });
  const ws = meta.prepare("SELECT workspace_id FROM objects WHERE id = ?").pluck().get(id) as string;
  meta.close();
  for (const f of ["volumes.sqlite", "volumes.sqlite-wal", "volumes.sqlite-shm"]) rmSync(join(dataDir, f), { force: true });
  const db = new Database(join(dataDir, "volumes.sqlite"));
  db.pragma("journal_mode = WAL");
  return { id, ws, dataDir, db };
}

describe("a home written by the previous release", () => {
  it("upgrades in place: its volumes read, commit and show history as before", async () => {
    const server = await SiloServer.start([], { blobs: "local" });
    try {
      // The object registry (meta.sqlite) is unchanged; the volume's manifest is rewritten as the old release stored it.
      const { id, ws, dataDir, db } = await homeWithOldManifest(server);
      // meta.sqlite's tables are as the previous release wrote them; it had no schema versions.
      const meta = new Database(join(dataDir, "meta.sqlite"));
      meta.exec("DROP TABLE schema_versions");
      meta.close();
      db.exec(PREVIOUS_RELEASE_DDL);
      const a = Buffer.from("version one of a\n");
      const a2 = Buffer.from("version two of a, longer\n");
      const b = Buffer.from("b stays\n");
      const t = Date.now() - 10_000;
      const block = db.prepare("INSERT INTO blocks (workspace, hash, size, refs, touched_at, data) VALUES (?, ?, ?, ?, ?, ?)");
      block.run(ws, sha256(a), a.length, 0, t, a);
      block.run(ws, sha256(a2), a2.length, 1, t, a2);
      block.run(ws, sha256(b), b.length, 1, t, b);
      const row = db.prepare(
        "INSERT INTO entries (volume, path, valid_from, valid_to, parent, kind, mode, size, mtime, blocks, link_target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      );
      // v1: dir d, d/a, b; v2: d/a replaced, a symlink added.
      row.run(id, "d", 1, OPEN, "", "directory", 0o755, 0, t, null, null);
      row.run(id, "d/a", 1, 2, "d", "file", 0o644, a.length, t, Buffer.from(sha256(a), "hex"), null);
      row.run(id, "d/a", 2, OPEN, "d", "file", 0o644, a2.length, t, Buffer.from(sha256(a2), "hex"), null);
      row.run(id, "b", 1, OPEN, "", "file", 0o600, b.length, t, Buffer.from(sha256(b), "hex"), null);
      row.run(id, "l", 2, OPEN, "", "symlink", 0o777, 3, t, null, "d/a");
      db.prepare("UPDATE blocks SET refs = 1 WHERE hash = ?").run(sha256(a));
      const version = db.prepare("INSERT INTO versions (volume, version, created_at) VALUES (?, ?, ?)");
      for (const v of [0, 1, 2]) version.run(id, v, t + v);
      db.prepare("INSERT INTO volume_state (volume, workspace, latest, oldest, inodes) VALUES (?, ?, 2, 0, 4)").run(id, ws);
      db.prepare("INSERT INTO blob_location (id, location) VALUES (1, 'local')").run();
      db.close();

      await server.launch();
      const v = await server.client().volumes.fromName("old");
      expect((await v.info()).version).toBe(2);
      expect((await v.listdir("/", { recursive: true })).map((e) => e.path).sort()).toEqual(["b", "d", "d/a", "l"]);
      expect((await readAll(v, "d/a")).equals(a2)).toBe(true);
      expect((await v.blocks.delta(1, 2)).changes.map((c) => (c.op === "put" ? c.entry.path : `-${c.path}`))).toEqual(["d/a", "l"]);
      // History of versions the old release wrote: no token recorded, changes still known.
      const history = await v.history();
      expect(history.versions.map((h) => h.version)).toEqual([2, 1, 0]);
      expect(history.versions[0]).toMatchObject({ put: { count: 2, paths: ["d/a", "l"] }, removed: { count: 0 } });
      expect(history.versions[0]!.tokenId).toBeUndefined();
      // Old versions restore; new commits record their token.
      await v.restore(1, "d/a");
      expect((await readAll(v, "d/a")).equals(a)).toBe(true);
      const latest = (await v.history()).versions[0]!;
      expect(latest.version).toBe(3);
      expect(latest.tokenId).toBe(server.profile.tokenId);

      await server.stop();
      const after = new Database(join(dataDir, "volumes.sqlite"), { readonly: true });
      expect(schemaVersion(after, "volumes")).toBe(VOLUME_MIGRATIONS.length);
      const cols = (after.prepare("PRAGMA table_info(versions)").all() as Array<{ name: string }>).map((c) => c.name);
      expect(cols).toEqual(["volume", "version", "created_at", "token_id", "note"]);
      after.close();
      const metaAfter = new Database(join(dataDir, "meta.sqlite"), { readonly: true });
      expect(["auth", "objects", "secrets"].map((c) => schemaVersion(metaAfter, c))).toEqual([2, 1, 1]); // auth step 2: tokens.issued_by;
      metaAfter.close();
    } finally {
      await server.cleanup();
    }
  });
});

describe("a home written before POSIX metadata (schema version 2)", () => {
  it("upgrades in place: old rows read back as before, and new fields commit after the upgrade", async () => {
    const server = await SiloServer.start([], { blobs: "local" });
    try {
      // volumes.sqlite exactly as the release before POSIX metadata left it: its two migration steps, its rows.
      const { id, ws, dataDir, db } = await homeWithOldManifest(server);
      migrate(db, "volumes", VOLUME_MIGRATIONS.slice(0, 2));
      const data = Buffer.from("bytes from before\n");
      const t = Date.now() - 10_000;
      db.prepare("INSERT INTO blocks (workspace, hash, size, refs, touched_at, data) VALUES (?, ?, ?, 1, ?, ?)").run(ws, sha256(data), data.length, t, data);
      const row = db.prepare(
        "INSERT INTO entries (volume, path, valid_from, valid_to, parent, kind, mode, size, mtime, blocks, link_target) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
      );
      row.run(id, "d", OPEN, "", "directory", 0o750, 0, t, null, null);
      row.run(id, "d/f", OPEN, "d", "file", 0o640, data.length, t, Buffer.from(sha256(data), "hex"), null);
      row.run(id, "l", OPEN, "", "symlink", 0o777, 3, t, null, "d/f");
      for (const v of [0, 1]) db.prepare("INSERT INTO versions (volume, version, created_at, token_id, note) VALUES (?, ?, ?, NULL, NULL)").run(id, v, t + v);
      db.prepare("INSERT INTO volume_state (volume, workspace, latest, oldest, inodes) VALUES (?, ?, 1, 0, 3)").run(id, ws);
      db.prepare("INSERT INTO blob_location (id, location) VALUES (1, 'local')").run();
      db.close();

      await server.launch();
      const v = await server.client().volumes.fromName("old");
      expect((await v.blocks.tree(1)).entries).toEqual([
        { path: "d", type: "directory", mode: 0o750, size: 0, mtimeMs: t },
        { path: "d/f", type: "file", mode: 0o640, size: data.length, mtimeMs: t, blocks: [sha256(data)] },
        { path: "l", type: "symlink", mode: 0o777, size: 3, mtimeMs: t, target: "d/f" },
      ]);
      expect((await readAll(v, "d/f")).equals(data)).toBe(true);
      // New fields on an upgraded home: a hard link to the old file, with owner and ns time.
      const old = (await v.blocks.tree(1)).entries[1]!;
      const ns = "1700000000123456789";
      const linked = { ...old, uid: 7, gid: 8, mtimeNs: ns, linkId: "up" };
      await v.blocks.commitChanges({ baseVersion: 1, changes: [{ op: "put", entry: linked }, { op: "put", entry: { ...linked, path: "d/g" } }] });
      const puts = (await v.blocks.delta(1, 2)).changes.flatMap((c) => (c.op === "put" ? [c.entry] : []));
      expect(puts.map((e) => e.path)).toEqual(["d/f", "d/g"]);
      for (const e of puts) expect(e).toMatchObject({ uid: 7, gid: 8, mtimeNs: ns, mtimeMs: 1700000000123, linkId: "up", blocks: [sha256(data)] });
      // The old version still reads as it was.
      expect((await v.blocks.tree(1)).entries[1]).toEqual(old);
      await server.stop();
      const check = new Database(join(dataDir, "volumes.sqlite"), { readonly: true });
      expect(check.prepare("SELECT version FROM schema_versions WHERE component = 'volumes'").pluck().get()).toBe(VOLUME_MIGRATIONS.length);
      check.close();
    } finally {
      await server.cleanup();
    }
  });
});
