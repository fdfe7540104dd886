import type { Change, Delta, EntryType, ManifestEntry, TreePage } from "../../protocol/volume.js";
import type Database from "better-sqlite3";
import type { Sqlite } from "../db.js";
import { siloError, notFound } from "../errors.js";
import { type BlockIndex, unpackHashes } from "./block-index.js";
import { ancestors, subtreeBounds } from "./paths.js";

type Stmt = Database.Statement<unknown[]>;

/** `valid_to` of a row still live in the latest version. */
export const OPEN = Number.MAX_SAFE_INTEGER;

/** One stored manifest row: path `path` as it is in versions [valid_from, valid_to). */
export interface Row {
  path: string;
  valid_from: number;
  valid_to: number;
  parent: string;
  kind: EntryType;
  mode: number;
  size: number;
  mtime: number;
  blocks: Buffer | null;
  link_target: string | null;
}

export interface VolumeState {
  volume: string;
  workspace: string;
  latest: number;
  /** Oldest version still readable (older ones were garbage-collected). */
  oldest: number;
  inodes: number;
}

export function toEntry(r: Row): ManifestEntry {
  const e: ManifestEntry = { path: r.path, type: r.kind, mode: r.mode, size: r.size, mtimeMs: r.mtime };
  if (r.kind === "file") e.blocks = unpackHashes(r.blocks);
  if (r.kind === "symlink") e.target = r.link_target ?? "";
  return e;
}

const COLS = "path, valid_from, valid_to, parent, kind, mode, size, mtime, blocks, link_target";
/** Rows visible in version ?N (two parameters: N, N). */
const AT = "valid_from <= ? AND valid_to > ?";

/**
 * The MVCC manifest of every volume: version N sees rows with valid_from ≤ N < valid_to.
 * Rows live in the latest version have valid_to = OPEN, so "latest" queries are index
 * equalities; deltas and GC range over valid_from / valid_to, so their cost follows the change.
 */
export class ManifestStore {
  /** Prepared statements, shared with the commit and GC code. */
  readonly s: Record<string, Stmt>;

  constructor(
    readonly db: Sqlite,
    readonly blocks: BlockIndex,
  ) {
    db.exec(`
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
    `);
    this.s = {
      state: db.prepare("SELECT * FROM volume_state WHERE volume = ?"),
      initState: db.prepare("INSERT OR IGNORE INTO volume_state (volume, workspace, latest, oldest, inodes) VALUES (?, ?, 0, 0, 0)"),
      initVersion: db.prepare("INSERT OR IGNORE INTO versions (volume, version, created_at) VALUES (?, 0, ?)"),
      setState: db.prepare("UPDATE volume_state SET latest = ?, inodes = ? WHERE volume = ?"),
      addVersion: db.prepare("INSERT INTO versions (volume, version, created_at) VALUES (?, ?, ?)"),
      live: db.prepare(`SELECT ${COLS} FROM entries WHERE volume = ? AND path = ? AND valid_to = ${OPEN}`),
      at: db.prepare(`SELECT ${COLS} FROM entries WHERE volume = ? AND path = ? AND ${AT}`),
      liveSubtree: db.prepare(
        `SELECT ${COLS} FROM entries WHERE volume = ? AND valid_to = ${OPEN} AND path > ? AND path < ? ORDER BY path`,
      ),
      countChildren: db.prepare(`SELECT count(*) FROM entries WHERE volume = ? AND parent = ? AND valid_to = ${OPEN}`).pluck(),
      insert: db.prepare(
        `INSERT INTO entries (volume, path, valid_from, valid_to, parent, kind, mode, size, mtime, blocks, link_target)
         VALUES (?, ?, ?, ${OPEN}, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      close: db.prepare(`UPDATE entries SET valid_to = ? WHERE volume = ? AND path = ? AND valid_to = ${OPEN}`),
      drop: db.prepare("DELETE FROM entries WHERE volume = ? AND path = ? AND valid_from = ?"),
      treeLatest: db.prepare(
        `SELECT ${COLS} FROM entries WHERE volume = ? AND valid_to = ${OPEN} AND path > ? ORDER BY path LIMIT ?`,
      ),
      treeAt: db.prepare(`SELECT ${COLS} FROM entries WHERE volume = ? AND path > ? AND ${AT} ORDER BY path LIMIT ?`),
      childrenLatest: db.prepare(
        `SELECT ${COLS} FROM entries WHERE volume = ? AND parent = ? AND valid_to = ${OPEN} AND path > ? ORDER BY path LIMIT ?`,
      ),
      childrenAt: db.prepare(
        `SELECT ${COLS} FROM entries WHERE volume = ? AND parent = ? AND path > ? AND ${AT} ORDER BY path LIMIT ?`,
      ),
      subtreeLatest: db.prepare(
        `SELECT ${COLS} FROM entries WHERE volume = ? AND valid_to = ${OPEN} AND path > ? AND path < ? ORDER BY path LIMIT ?`,
      ),
      subtreeAt: db.prepare(
        `SELECT ${COLS} FROM entries WHERE volume = ? AND path > ? AND path < ? AND ${AT} ORDER BY path LIMIT ?`,
      ),
      created: db.prepare(`SELECT ${COLS} FROM entries WHERE volume = ? AND valid_from > ? AND valid_from <= ? AND valid_to > ?`),
      closed: db.prepare(
        `SELECT path FROM entries WHERE volume = ? AND valid_to > ? AND valid_to <= ? AND valid_from <= ?`,
      ).pluck(),
    };
  }

  /** A volume's state, created at version 0 (empty) on first use. */
  state(volume: string, workspace: string, createdAt: number): VolumeState {
    let st = this.s.state.get(volume) as VolumeState | undefined;
    if (!st) {
      this.db.transaction(() => {
        this.s.initState.run(volume, workspace);
        this.s.initVersion.run(volume, createdAt);
      })();
      st = this.s.state.get(volume) as VolumeState;
    }
    return st;
  }

  /** Throws unless `version` exists and is still retained. */
  checkVersion(st: VolumeState, version: number): void {
    if (!Number.isInteger(version) || version > st.latest) throw notFound(`Version ${version} of the volume`);
    if (version < st.oldest) {
      throw siloError("VERSION_GONE", `Version ${version} is no longer retained (oldest is ${st.oldest}); read the full tree of a newer version`);
    }
  }

  lookup(st: VolumeState, version: number, path: string): Row | undefined {
    if (version === st.latest) return this.s.live.get(st.volume, path) as Row | undefined;
    return this.s.at.get(st.volume, path, version, version) as Row | undefined;
  }

  tree(st: VolumeState, version: number, after: string, limit: number): TreePage {
    const rows = (
      version === st.latest
        ? this.s.treeLatest.all(st.volume, after, limit + 1)
        : this.s.treeAt.all(st.volume, after, version, version, limit + 1)
    ) as Row[];
    return page(version, rows, limit);
  }

  /** Entries directly in `dir`, or (recursive) everything below it, in path order. */
  list(st: VolumeState, version: number, dir: string, recursive: boolean, after: string, limit: number): TreePage {
    let rows: Row[];
    const latest = version === st.latest;
    if (recursive && dir === "") return this.tree(st, version, after, limit);
    if (recursive) {
      const { low, high } = subtreeBounds(dir);
      const from = after > low ? after : low;
      rows = (latest
        ? this.s.subtreeLatest.all(st.volume, from, high, limit + 1)
        : this.s.subtreeAt.all(st.volume, from, high, version, version, limit + 1)) as Row[];
    } else {
      rows = (latest
        ? this.s.childrenLatest.all(st.volume, dir, after, limit + 1)
        : this.s.childrenAt.all(st.volume, dir, after, version, version, limit + 1)) as Row[];
    }
    return page(version, rows, limit);
  }

  /** Live rows strictly below directory `dir` (not the root), in path order. */
  liveSubtree(volume: string, dir: string): Row[] {
    const { low, high } = subtreeBounds(dir);
    return this.s.liveSubtree.all(volume, low, high) as Row[];
  }

  /** The changes that turn version `from` into `to`: deletes first, then puts, each in path order. */
  delta(st: VolumeState, from: number, to: number): Delta {
    const puts = (this.s.created.all(st.volume, from, to, to) as Row[]).sort((a, b) => cmp(a.path, b.path));
    const put = new Set(puts.map((r) => r.path));
    const gone = new Set((this.s.closed.all(st.volume, from, to, from) as string[]).filter((p) => !put.has(p)));
    // A deleted directory takes its subtree along: list only the outermost deleted paths.
    const deletes = [...gone].filter((p) => !ancestors(p).some((a) => gone.has(a))).sort(cmp);
    const changes: Change[] = [
      ...deletes.map((path): Change => ({ op: "delete", path })),
      ...puts.map((r): Change => ({ op: "put", entry: toEntry(r) })),
    ];
    return { from, to, changes };
  }
}

function page(version: number, rows: Row[], limit: number): TreePage {
  const more = rows.length > limit;
  const entries = (more ? rows.slice(0, limit) : rows).map(toEntry);
  return more ? { version, entries, next: entries[entries.length - 1]!.path } : { version, entries };
}

/** Binary (UTF-8 byte) order, the order SQLite sorts paths in. */
export const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
