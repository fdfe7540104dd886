import type Database from "better-sqlite3";
import type { Change, Delta, EntryType, HistoryPage, ManifestEntry, TreePage, VersionInfo, VersionPin } from "../../protocol/volume.js";
import { OffLoopCommits, type Sqlite, unsyncedTransaction } from "../db.js";
import { invalid, notFound, siloError } from "../errors.js";
import { migrate } from "../sqlite-migrations.js";
import { packBlocks, packedHashes, unpackBlocks } from "./block-list.js";
import { type CommitTxn, type Overwrite, type VolumeLimits, applyCommit } from "./commit.js";
import { type BlockPlace, type CommitMeta, type ManifestStore, type VolumeState, cmp } from "./manifest-store.js";
import { ancestors, parentOf, subtreeBounds } from "./paths.js";
import { VOLUME_MIGRATIONS } from "./sqlite-schema.js";

type Stmt = Database.Statement<unknown[]>;

/** `valid_to` of a row still live in the latest version. */
const OPEN = Number.MAX_SAFE_INTEGER;

/** One stored manifest row: path `path` as it is in versions [valid_from, valid_to). */
interface Row {
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
  // POSIX metadata (schema version 3); NULL in rows written before, and where the entry had none.
  uid: number | null;
  gid: number | null;
  mtime_ns: string | null;
  atime_ns: string | null;
  ctime_ns: string | null;
  rdev: number | null;
  link_id: string | null;
  /** JSON of the name → base64 value map, names sorted (so equal maps are equal text). */
  xattrs: string | null;
}

/** The metadata columns of a row, in COLS order after `link_target`. */
type MetaValues = [number | null, number | null, string | null, string | null, string | null, number | null, string | null, string | null];

function metaValues(e: ManifestEntry): MetaValues {
  const names = e.xattrs ? Object.keys(e.xattrs).sort() : [];
  const xattrs = names.length > 0 ? JSON.stringify(Object.fromEntries(names.map((n) => [n, e.xattrs![n]]))) : null;
  return [e.uid ?? null, e.gid ?? null, e.mtimeNs ?? null, e.atimeNs ?? null, e.ctimeNs ?? null, e.rdev ?? null, e.linkId ?? null, xattrs];
}

function rowMeta(r: Row): MetaValues {
  return [r.uid, r.gid, r.mtime_ns, r.atime_ns, r.ctime_ns, r.rdev, r.link_id, r.xattrs];
}

function toEntry(r: Row): ManifestEntry {
  return entryOf([r.path, r.kind, r.mode, r.size, r.mtime, r.blocks, r.link_target, ...rowMeta(r)]);
}

/**
 * The columns of a manifest entry, for the reads that return pages of entries (list, tree): as
 * arrays (`raw`), not as row objects of every column, they cost SQLite and better-sqlite3
 * about half as much per row (docs/benchmarks.md, "`find` and listings").
 */
const ENTRY_COLS = "path, kind, mode, size, mtime, blocks, link_target, uid, gid, mtime_ns, atime_ns, ctime_ns, rdev, link_id, xattrs";
type EntryValues = [string, EntryType, number, number, number, Buffer | null, string | null, ...MetaValues];

function entryOf(v: EntryValues): ManifestEntry {
  const [path, kind, mode, size, mtime, blocks, linkTarget, uid, gid, mtimeNs, atimeNs, ctimeNs, rdev, linkId, xattrs] = v;
  const e: ManifestEntry = { path, type: kind, mode, size, mtimeMs: mtime };
  if (uid !== null) e.uid = uid;
  if (gid !== null) e.gid = gid;
  if (mtimeNs !== null) e.mtimeNs = mtimeNs;
  if (atimeNs !== null) e.atimeNs = atimeNs;
  if (ctimeNs !== null) e.ctimeNs = ctimeNs;
  if (rdev !== null) e.rdev = rdev;
  if (linkId !== null) e.linkId = linkId;
  if (xattrs !== null) e.xattrs = JSON.parse(xattrs) as Record<string, string>;
  if (kind === "file") e.blocks = unpackBlocks(blocks);
  if (kind === "symlink") e.target = linkTarget ?? "";
  return e;
}

/** Whether two rows hold the same entry (whatever versions they belong to). */
function sameContent(a: Row, b: Row): boolean {
  const blocks = a.blocks === null || b.blocks === null ? a.blocks === b.blocks : a.blocks.equals(b.blocks);
  const ma = rowMeta(a);
  const mb = rowMeta(b);
  return (
    a.kind === b.kind && a.mode === b.mode && a.size === b.size && a.mtime === b.mtime && a.link_target === b.link_target && blocks && ma.every((v, i) => v === mb[i])
  );
}

function page(version: number, rows: EntryValues[], limit: number): TreePage {
  const more = rows.length > limit;
  const entries = (more ? rows.slice(0, limit) : rows).map(entryOf);
  return more ? { version, entries, next: entries[entries.length - 1]!.path } : { version, entries };
}

const COLS = "path, valid_from, valid_to, parent, kind, mode, size, mtime, blocks, link_target, uid, gid, mtime_ns, atime_ns, ctime_ns, rdev, link_id, xattrs";
/** Rows visible in version ?N (two parameters: N, N). */
const AT = "valid_from <= ? AND valid_to > ?";

/**
 * The SQLite engine of ManifestStore: one file (`volumes.sqlite`) per home, every statement here.
 * The manifest is MVCC: version N sees rows with valid_from ≤ N < valid_to. Rows live in the
 * latest version have valid_to = OPEN, so "latest" queries are index equalities; deltas, history
 * and GC range over valid_from / valid_to, so their cost follows the change, not the volume.
 * better-sqlite3 is synchronous, so every method is one atomic step (a transaction where it writes).
 */
export class SqliteManifestStore implements ManifestStore {
  private readonly s: Record<string, Stmt>;
  /** recordBlock calls waiting for the next group transaction. */
  private blockRecords: Array<{ args: [string, string, number, number]; resolve: () => void; reject: (err: unknown) => void }> = [];
  private readonly offLoop: OffLoopCommits;

  constructor(private readonly db: Sqlite) {
    migrate(db, "volumes", VOLUME_MIGRATIONS);
    this.offLoop = new OffLoopCommits(db);
    const p = (sql: string) => db.prepare(sql);
    const page = (where: string, index = "") => db.prepare(`SELECT ${ENTRY_COLS} FROM entries ${index} WHERE ${where}`).raw(true);
    this.s = {
      // volumes and versions
      state: p("SELECT volume, workspace, latest, oldest, inodes FROM volume_state WHERE volume = ?"),
      states: p("SELECT volume, workspace, latest, oldest, inodes FROM volume_state"),
      initState: p("INSERT OR IGNORE INTO volume_state (volume, workspace, latest, oldest, inodes) VALUES (?, ?, 0, 0, 0)"),
      initVersion: p("INSERT OR IGNORE INTO versions (volume, version, created_at) VALUES (?, 0, ?)"),
      setState: p("UPDATE volume_state SET latest = ?, inodes = ? WHERE volume = ?"),
      setOldest: p("UPDATE volume_state SET oldest = ? WHERE volume = ?"),
      addVersion: p("INSERT INTO versions (volume, version, created_at, token_id, note) VALUES (?, ?, ?, ?, ?)"),
      // manifest rows
      live: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND path = ? AND valid_to = ${OPEN}`),
      at: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND path = ? AND ${AT}`),
      liveSubtree: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND valid_to = ${OPEN} AND path > ? AND path < ? ORDER BY path`),
      countChildren: p(`SELECT count(*) FROM entries WHERE volume = ? AND parent = ? AND valid_to = ${OPEN}`).pluck(),
      insert: p(
        `INSERT INTO entries (volume, path, valid_from, valid_to, parent, kind, mode, size, mtime, blocks, link_target,
           uid, gid, mtime_ns, atime_ns, ctime_ns, rdev, link_id, xattrs)
         VALUES (?, ?, ?, ${OPEN}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      close: p(`UPDATE entries SET valid_to = ? WHERE volume = ? AND path = ? AND valid_to = ${OPEN}`),
      drop: p("DELETE FROM entries WHERE volume = ? AND path = ? AND valid_from = ?"),
      treeAt: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND path > ? AND ${AT} ORDER BY path LIMIT ?`),
      // Pages of entries, as EntryValues
      treeLatestPage: page(`volume = ? AND valid_to = ${OPEN} AND path > ? ORDER BY path LIMIT ?`),
      treeAtPage: page(`volume = ? AND path > ? AND ${AT} ORDER BY path LIMIT ?`),
      childrenLatest: page(`volume = ? AND parent = ? AND valid_to = ${OPEN} AND path > ? ORDER BY path LIMIT ?`),
      // By the parent index (then sorted): left to itself SQLite walks the path index of the whole
      // volume to avoid the sort, a listing of an older version costing O(volume) (100,000
      // entries: ~30 ms per directory instead of ~3).
      childrenAt: page(`volume = ? AND parent = ? AND path > ? AND ${AT} ORDER BY path LIMIT ?`, "INDEXED BY entries_by_parent"),
      linkedLatest: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND link_id = ? AND valid_to = ${OPEN} ORDER BY path`),
      linkedAt: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND link_id = ? AND ${AT} ORDER BY path`),
      subtreeLatest: page(`volume = ? AND valid_to = ${OPEN} AND path > ? AND path < ? ORDER BY path LIMIT ?`),
      subtreeAt: page(`volume = ? AND path > ? AND path < ? AND ${AT} ORDER BY path LIMIT ?`),
      created: p(`SELECT ${COLS} FROM entries WHERE volume = ? AND valid_from > ? AND valid_from <= ? AND valid_to > ?`),
      closed: p("SELECT path FROM entries WHERE volume = ? AND valid_to > ? AND valid_to <= ? AND valid_from <= ?").pluck(),
      changedSince: p(
        `SELECT path FROM entries INDEXED BY entries_by_from WHERE volume = @volume AND valid_from > @version
         UNION SELECT path FROM entries WHERE volume = @volume AND valid_to > @version AND valid_to < ${OPEN}`,
      ).pluck(),
      // Subtree conditions are written as a path range (then filtered), so the path index serves them.
      changedSinceUnder: p(
        `SELECT DISTINCT path FROM entries WHERE volume = @volume AND path >= @path AND path < @high AND (path = @path OR path > @low)
         AND (valid_from > @version OR (valid_to > @version AND valid_to < ${OPEN}))`,
      ).pluck(),
      // history (the version's rows by valid_from: without statistics SQLite would rather scan the path index)
      versionsBefore: p("SELECT version, created_at, token_id, note FROM versions WHERE volume = ? AND version < ? ORDER BY version DESC LIMIT ?"),
      version: p("SELECT version, created_at, token_id, note FROM versions WHERE volume = ? AND version = ?"),
      versionsTouching: p(
        `SELECT v FROM (
           SELECT valid_from AS v FROM entries WHERE volume = @volume AND path >= @path AND path < @high AND (path = @path OR path > @low)
           UNION SELECT valid_to FROM entries WHERE volume = @volume AND valid_to < ${OPEN} AND path >= @path AND path < @high AND (path = @path OR path > @low))
         WHERE v >= @oldest AND v < @before ORDER BY v DESC LIMIT @limit`,
      ).pluck(),
      putCount: p("SELECT count(*) FROM entries INDEXED BY entries_by_from WHERE volume = @volume AND valid_from = @version AND (@path IS NULL OR path = @path OR (path > @low AND path < @high))").pluck(),
      putPaths: p(
        "SELECT path FROM entries INDEXED BY entries_by_from WHERE volume = @volume AND valid_from = @version AND (@path IS NULL OR path = @path OR (path > @low AND path < @high)) ORDER BY path LIMIT @limit",
      ).pluck(),
      removedCount: p(
        `SELECT count(*) FROM entries e WHERE volume = @volume AND valid_to = @version AND (@path IS NULL OR path = @path OR (path > @low AND path < @high))
         AND NOT EXISTS (SELECT 1 FROM entries n WHERE n.volume = e.volume AND n.path = e.path AND n.valid_from = e.valid_to)`,
      ).pluck(),
      removedPaths: p(
        `SELECT path FROM entries e WHERE volume = @volume AND valid_to = @version AND (@path IS NULL OR path = @path OR (path > @low AND path < @high))
         AND NOT EXISTS (SELECT 1 FROM entries n WHERE n.volume = e.volume AND n.path = e.path AND n.valid_from = e.valid_to)
         ORDER BY path LIMIT @limit`,
      ).pluck(),
      // pins
      insertPin: p("INSERT INTO version_pins (volume, pin_id, version, expires_at) VALUES (?, ?, ?, ?)"),
      renewPin: p("UPDATE version_pins SET version = coalesce(?, version), expires_at = ? WHERE volume = ? AND pin_id = ? RETURNING version").pluck(),
      deletePin: p("DELETE FROM version_pins WHERE volume = ? AND pin_id = ?"),
      oldestPin: p("SELECT min(version) FROM version_pins WHERE volume = ? AND expires_at > ?").pluck(),
      dropExpiredPins: p("DELETE FROM version_pins WHERE volume = ? AND expires_at <= ?"),
      dropVolumePins: p("DELETE FROM version_pins WHERE volume = ?"),
      livePins: p("SELECT pin_id AS pinId, version, expires_at AS expiresAt FROM version_pins WHERE volume = ? AND expires_at > ? ORDER BY version, pin_id"),
      // garbage collection
      firstRetained: p("SELECT min(version) FROM versions WHERE volume = ? AND created_at >= ?").pluck(),
      expired: p("SELECT rowid AS id, blocks FROM entries WHERE volume = ? AND valid_to <= ? LIMIT ?"),
      allRows: p("SELECT rowid AS id, blocks FROM entries WHERE volume = ? LIMIT ?"),
      dropRow: p("DELETE FROM entries WHERE rowid = ?"),
      dropVersions: p("DELETE FROM versions WHERE volume = ? AND version < ?"),
      dropAllVersions: p("DELETE FROM versions WHERE volume = ?"),
      dropState: p("DELETE FROM volume_state WHERE volume = ?"),
      // block index
      workspaces: p("SELECT DISTINCT workspace FROM blocks").pluck(),
      touch: p("UPDATE blocks SET touched_at = ? WHERE workspace = ? AND hash = ?"),
      uploaded: p(
        `INSERT INTO blocks (workspace, hash, size, refs, touched_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT (workspace, hash) DO UPDATE SET touched_at = excluded.touched_at`,
      ),
      inline: p(
        `INSERT INTO blocks (workspace, hash, size, refs, touched_at, data) VALUES (?, ?, ?, 0, ?, ?)
         ON CONFLICT (workspace, hash) DO UPDATE SET touched_at = excluded.touched_at, data = coalesce(data, excluded.data)`,
      ),
      data: p("SELECT data FROM blocks WHERE workspace = ? AND hash = ?").pluck(),
      ref: p("UPDATE blocks SET refs = refs + 1 WHERE workspace = ? AND hash = ?"),
      unref: p("UPDATE blocks SET refs = refs - 1 WHERE workspace = ? AND hash = ?"),
      size: p("SELECT size FROM blocks WHERE workspace = ? AND hash = ?").pluck(),
      collectable: p("SELECT hash FROM blocks WHERE workspace = ? AND refs <= 0 AND touched_at < ? LIMIT ?").pluck(),
      forget: p("DELETE FROM blocks WHERE workspace = ? AND hash = ? AND refs <= 0 AND touched_at < ? RETURNING data IS NULL").pluck(),
      stats: p("SELECT count(*) AS blocks, coalesce(sum(size), 0) AS bytes FROM blocks WHERE workspace = ?"),
      totals: p(
        `SELECT count(*) AS blocks, coalesce(sum(size), 0) AS bytes,
                coalesce(sum(CASE WHEN refs > 0 THEN size END), 0) AS referencedBytes,
                coalesce(sum(CASE WHEN refs > 0 THEN size * refs END), 0) AS logicalBytes FROM blocks`,
      ),
      ping: p("SELECT 1"),
      // blob location
      initLocation: p("INSERT OR IGNORE INTO blob_location (id, location) VALUES (1, ?)"),
      location: p("SELECT location FROM blob_location").pluck(),
    };
  }

  close(): void {
    this.db.close();
  }

  async ping(): Promise<void> {
    this.s.ping.get();
  }

  async pinBlobLocation(location: string): Promise<void> {
    this.s.initLocation.run(location);
    const pinned = this.s.location.get() as string;
    if (pinned !== location) {
      throw siloError("INVALID", `This SILO_HOME keeps its volume blocks in '${pinned}', not '${location}': start silo serve with --blobs ${pinned}`);
    }
  }

  // ---- volumes and versions ----

  private read(volume: string): VolumeState {
    const st = this.s.state.get(volume) as VolumeState | undefined;
    if (!st) throw notFound(`Volume ${volume}`);
    return st;
  }

  /** `version` (default: the latest) if it is retained, else NotFound / VERSION_GONE. */
  private retained(st: VolumeState, version: number | undefined): number {
    const v = version ?? st.latest;
    if (!Number.isInteger(v) || v < 0 || v > st.latest) throw notFound(`Version ${v} of the volume`);
    if (v < st.oldest) {
      throw siloError("VERSION_GONE", `Version ${v} is no longer retained (oldest is ${st.oldest}); read the full tree of a newer version`);
    }
    return v;
  }

  async state(volume: string, workspace: string, createdAt: number): Promise<VolumeState> {
    let st = this.s.state.get(volume) as VolumeState | undefined;
    if (!st) {
      this.db.transaction(() => {
        this.s.initState.run(volume, workspace);
        this.s.initVersion.run(volume, createdAt);
      })();
      st = this.read(volume);
    }
    return st;
  }

  async checkVersion(volume: string, version?: number): Promise<number> {
    return this.retained(this.read(volume), version);
  }

  async commit(volume: string, changes: readonly Change[], limits: VolumeLimits, overwrite: Overwrite, meta: CommitMeta): Promise<number> {
    return this.db.transaction(() => {
      // Read inside the transaction: commits of one volume are serialised here.
      const st = this.read(volume);
      if (changes.length === 0) return st.latest;
      const txn = new SqliteCommitTxn(this.s, st);
      const inodes = applyCommit(txn, changes, limits, overwrite, meta.now);
      this.s.addVersion.run(volume, txn.version, meta.now, meta.tokenId ?? null, meta.note ?? null);
      this.s.setState.run(txn.version, inodes, volume);
      return txn.version;
    })();
  }

  async fork(source: string, version: number, target: string, workspace: string, meta: CommitMeta): Promise<VolumeState> {
    return this.db.transaction(() => {
      const src = this.read(source);
      const v = this.retained(src, version);
      const dst = this.read(target);
      if (dst.latest !== 0 || dst.inodes !== 0) throw invalid("A volume can only be forked into a new, empty volume");
      if (dst.workspace !== src.workspace || dst.workspace !== workspace) throw invalid("A volume can only be forked within its workspace");
      let inodes = 0;
      // Read whole before writing: better-sqlite3 allows no writes while a statement iterates.
      for (const r of this.s.treeAt.all(source, "", v, v, OPEN) as Row[]) {
        const hashes = packedHashes(r.blocks);
        this.s.insert.run(target, r.path, 1, r.parent, r.kind, r.mode, r.size, r.mtime, r.blocks, r.link_target, ...rowMeta(r));
        // Shared, not copied: one more reference per block, as for a copy inside a volume.
        for (const hash of hashes) this.s.ref.run(workspace, hash);
        inodes++;
      }
      this.s.addVersion.run(target, 1, meta.now, meta.tokenId ?? null, meta.note ?? null);
      this.s.setState.run(1, inodes, target);
      return this.read(target);
    })();
  }

  // ---- reads ----

  async lookup(volume: string, version: number | undefined, path: string): Promise<{ version: number; entry: ManifestEntry | undefined }> {
    const st = this.read(volume);
    const v = this.retained(st, version);
    const row = (v === st.latest ? this.s.live.get(volume, path) : this.s.at.get(volume, path, v, v)) as Row | undefined;
    return { version: v, entry: row && toEntry(row) };
  }

  async tree(volume: string, version: number | undefined, after: string, limit: number): Promise<TreePage> {
    const st = this.read(volume);
    const v = this.retained(st, version);
    const rows = (v === st.latest ? this.s.treeLatestPage.all(volume, after, limit + 1) : this.s.treeAtPage.all(volume, after, v, v, limit + 1)) as EntryValues[];
    return page(v, rows, limit);
  }

  async list(volume: string, version: number | undefined, dir: string, recursive: boolean, after: string, limit: number): Promise<TreePage> {
    if (recursive && dir === "") return this.tree(volume, version, after, limit);
    const st = this.read(volume);
    const v = this.retained(st, version);
    const latest = v === st.latest;
    let rows: EntryValues[];
    if (recursive) {
      const { low, high } = subtreeBounds(dir);
      const from = after > low ? after : low;
      rows = (latest ? this.s.subtreeLatest.all(volume, from, high, limit + 1) : this.s.subtreeAt.all(volume, from, high, v, v, limit + 1)) as EntryValues[];
    } else {
      rows = (latest ? this.s.childrenLatest.all(volume, dir, after, limit + 1) : this.s.childrenAt.all(volume, dir, after, v, v, limit + 1)) as EntryValues[];
    }
    return page(v, rows, limit);
  }

  async linked(volume: string, version: number | undefined, linkIds: readonly string[]): Promise<{ version: number; entries: ManifestEntry[] }> {
    const st = this.read(volume);
    const v = this.retained(st, version);
    const entries: ManifestEntry[] = [];
    for (const id of new Set(linkIds)) {
      const rows = (v === st.latest ? this.s.linkedLatest.all(volume, id) : this.s.linkedAt.all(volume, id, v, v)) as Row[];
      for (const r of rows) entries.push(toEntry(r));
    }
    return { version: v, entries };
  }

  async liveSubtree(volume: string, dir: string): Promise<ManifestEntry[]> {
    const { low, high } = subtreeBounds(dir);
    return (this.s.liveSubtree.all(volume, low, high) as Row[]).map(toEntry);
  }

  async delta(volume: string, from: number, to: number | undefined): Promise<Delta> {
    const st = this.read(volume);
    const t = this.retained(st, to);
    if (from > t) throw invalid(`Delta needs from ≤ to (got ${from} > ${t})`);
    this.retained(st, from);
    const puts = (this.s.created.all(volume, from, t, t) as Row[]).sort((a, b) => cmp(a.path, b.path));
    const put = new Set(puts.map((r) => r.path));
    const gone = new Set((this.s.closed.all(volume, from, t, from) as string[]).filter((p) => !put.has(p)));
    // A deleted directory takes its subtree along: list only the outermost deleted paths.
    const deletes = [...gone].filter((p) => !ancestors(p).some((a) => gone.has(a))).sort(cmp);
    const changes: Change[] = [
      ...deletes.map((path): Change => ({ op: "delete", path })),
      ...puts.map((r): Change => ({ op: "put", entry: toEntry(r) })),
    ];
    return { from, to: t, changes };
  }

  async revertChanges(volume: string, version: number, under: string): Promise<Change[]> {
    const st = this.read(volume);
    const v = this.retained(st, version);
    const { low, high } = subtreeBounds(under);
    // The whole volume: what changed since `version`; a path: the rows of its subtree (by path).
    const paths = (
      under === ""
        ? (this.s.changedSince.all({ volume, version: v }) as string[])
        : (this.s.changedSinceUnder.all({ volume, version: v, path: under, low, high }) as string[])
    ).sort(cmp);
    const deletes: Change[] = [];
    const puts: Change[] = [];
    for (const path of paths) {
      const then = this.s.at.get(volume, path, v, v) as Row | undefined;
      const now = this.s.live.get(volume, path) as Row | undefined;
      // Only what differs: a path put back as it was (an earlier restore) is no change.
      if (then && !(now && sameContent(then, now))) puts.push({ op: "put", entry: toEntry(then) });
      else if (!then && now) deletes.push({ op: "delete", path });
    }
    return [...deletes, ...puts];
  }

  async history(volume: string, opts: { path?: string; before?: number; limit: number; sample: number }): Promise<HistoryPage> {
    const st = this.read(volume);
    const before = Math.min(opts.before ?? st.latest + 1, st.latest + 1);
    const path = opts.path || null;
    const { low, high } = subtreeBounds(path ?? "");
    let found: number[];
    if (path === null) {
      found = (this.s.versionsBefore.all(volume, before, opts.limit + 1) as Array<{ version: number }>).map((r) => r.version);
    } else {
      found = this.s.versionsTouching.all({ volume, path, low, high, oldest: st.oldest, before, limit: opts.limit + 1 }) as number[];
    }
    const more = found.length > opts.limit;
    const versions: VersionInfo[] = [];
    for (const v of more ? found.slice(0, opts.limit) : found) {
      const row = this.s.version.get(volume, v) as { version: number; created_at: number; token_id: string | null; note: string | null } | undefined;
      if (!row) continue;
      const args = { volume, version: v, path, low, high };
      const sample = { ...args, limit: opts.sample };
      const info: VersionInfo = {
        version: v,
        createdAt: row.created_at,
        put: { count: this.s.putCount.get(args) as number, paths: this.s.putPaths.all(sample) as string[] },
        removed: { count: 0, paths: [] },
      };
      if (row.token_id) info.tokenId = row.token_id;
      if (row.note) info.note = row.note;
      // What the oldest retained version removed was dropped with the versions before it.
      if (v === st.oldest && v > 0) info.partial = true;
      else info.removed = { count: this.s.removedCount.get(args) as number, paths: this.s.removedPaths.all(sample) as string[] };
      versions.push(info);
    }
    return more ? { versions, next: versions[versions.length - 1]!.version } : { versions };
  }

  // ---- version pins ----

  async pin(volume: string, pinId: string, version: number | undefined, ttlMs: number, now: number): Promise<VersionPin> {
    return this.db.transaction(() => {
      const v = this.retained(this.read(volume), version);
      const pin = { pinId, version: v, expiresAt: now + ttlMs, ttlMs };
      this.s.insertPin.run(volume, pinId, v, pin.expiresAt);
      return pin;
    })();
  }

  async renewPin(volume: string, pinId: string, version: number | undefined, ttlMs: number, now: number): Promise<VersionPin> {
    return this.db.transaction(() => {
      if (version !== undefined) this.retained(this.read(volume), version);
      const expiresAt = now + ttlMs;
      const pinned = this.s.renewPin.get(version ?? null, expiresAt, volume, pinId) as number | undefined;
      // GC forgets a lapsed pin before it stops counting it, so a pin still here still protects its version.
      if (pinned === undefined) throw notFound(`Pin ${pinId} (it lapsed, or was deleted)`);
      return { pinId, version: pinned, expiresAt, ttlMs };
    })();
  }

  async unpin(volume: string, pinId: string): Promise<void> {
    this.s.deletePin.run(volume, pinId);
  }

  async listPins(volume: string, now: number): Promise<Array<{ pinId: string; version: number; expiresAt: number }>> {
    return this.s.livePins.all(volume, now) as Array<{ pinId: string; version: number; expiresAt: number }>;
  }

  // ---- garbage collection ----

  async volumes(): Promise<VolumeState[]> {
    return this.s.states.all() as VolumeState[];
  }

  async expireVersions(volume: string, retainSince: number, now: number): Promise<number> {
    return this.db.transaction(() => {
      // Forget lapsed pins before ignoring them: a pin still stored still protects its version.
      this.s.dropExpiredPins.run(volume, now);
      const st = this.read(volume);
      const first = this.s.firstRetained.get(volume, retainSince) as number | null;
      const pinned = this.s.oldestPin.get(volume, now) as number | null;
      const oldest = Math.min(first ?? st.latest, st.latest, pinned ?? st.latest);
      if (oldest > st.oldest) {
        // From here on reads and new pins of the dropped versions are refused, so none sees a half-dropped version.
        this.s.dropVersions.run(volume, oldest);
        this.s.setOldest.run(oldest, volume);
        return oldest;
      }
      return st.oldest;
    })();
  }

  private dropRows(workspace: string, rows: Array<{ id: number; blocks: Buffer | null }>): void {
    for (const r of rows) {
      this.s.dropRow.run(r.id);
      for (const hash of packedHashes(r.blocks)) this.s.unref.run(workspace, hash);
    }
  }

  async dropExpiredRows(volume: string, limit: number): Promise<number> {
    return this.db.transaction(() => {
      const st = this.read(volume);
      const rows = this.s.expired.all(volume, st.oldest, limit) as Array<{ id: number; blocks: Buffer | null }>;
      this.dropRows(st.workspace, rows);
      return rows.length;
    })();
  }

  async purgeRows(volume: string, limit: number): Promise<number> {
    return this.db.transaction(() => {
      const st = this.s.state.get(volume) as VolumeState | undefined;
      if (!st) return 0;
      const rows = this.s.allRows.all(volume, limit) as Array<{ id: number; blocks: Buffer | null }>;
      this.dropRows(st.workspace, rows);
      if (rows.length === 0) {
        this.s.dropAllVersions.run(volume);
        this.s.dropState.run(volume);
        this.s.dropVolumePins.run(volume);
      }
      return rows.length;
    })();
  }

  // ---- block index ----

  async workspaces(): Promise<string[]> {
    return this.s.workspaces.all() as string[];
  }

  /**
   * One transaction, committed without a WAL fsync of its own (`synchronous = NORMAL` for it
   * alone): it only moves blocks' touched_at, which nothing acknowledged rests on. Whether a block
   * is present was made durable by its recordBlock; the touch only delays GC, and becomes durable
   * with the next fully synced commit (the WAL is written in order), such as the commit that
   * references the block, which checks again that every block exists. A put asks this once per
   * 8 MiB block: a WAL fsync each (3–6 ms on the event loop) stalled every upload meanwhile.
   */
  async missingBlocks(workspace: string, hashes: readonly string[], now: number): Promise<string[]> {
    return unsyncedTransaction(this.db, () => hashes.filter((hash) => this.s.touch.run(now, workspace, hash).changes === 0));
  }

  /**
   * Records of one event-loop turn go into one transaction, whose WAL fsync runs in the thread
   * pool (OffLoopCommits): on the event loop (3–6 ms each, one per 8 MiB block of a put) it
   * stalled every other request meanwhile. Groups committed during a sync share the next one.
   * Each caller is answered once its group's commit is on disk, as before; the caller holds the
   * block's lock throughout, so GC cannot take the blob file meanwhile.
   */
  recordBlock(workspace: string, hash: string, size: number, now: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.blockRecords.push({ args: [workspace, hash, size, now], resolve, reject });
      if (this.blockRecords.length === 1) setImmediate(() => this.writeBlockRecords());
    });
  }

  private writeBlockRecords(): void {
    const group = this.blockRecords;
    this.blockRecords = [];
    this.offLoop
      .run(() => {
        for (const r of group) this.s.uploaded.run(...r.args);
      })
      .then(
        () => {
          for (const r of group) r.resolve();
        },
        (err: unknown) => {
          for (const r of group) r.reject(err);
        },
      );
  }

  async storeInline(workspace: string, blocks: ReadonlyArray<{ hash: string; data: Uint8Array }>, now: number): Promise<void> {
    this.db.transaction(() => {
      for (const b of blocks) this.s.inline.run(workspace, b.hash, b.data.length, now, b.data);
    })();
  }

  async inlineBlock(workspace: string, hash: string): Promise<Buffer | undefined> {
    return (this.s.data.get(workspace, hash) as Buffer | null | undefined) ?? undefined;
  }

  async blockSize(workspace: string, hash: string): Promise<number | undefined> {
    return this.s.size.get(workspace, hash) as number | undefined;
  }

  async collectableBlocks(workspace: string, touchedBefore: number, limit: number): Promise<string[]> {
    return this.s.collectable.all(workspace, touchedBefore, limit) as string[];
  }

  async forgetBlocks(workspace: string, hashes: readonly string[], touchedBefore: number): Promise<Array<BlockPlace | undefined>> {
    return this.db.transaction(() =>
      hashes.map((hash) => {
        const blob = this.s.forget.get(workspace, hash, touchedBefore) as number | undefined;
        return blob === undefined ? undefined : blob ? ("blob" as const) : ("inline" as const);
      }),
    )();
  }

  async blockStats(workspace: string): Promise<{ blocks: number; bytes: number }> {
    return this.s.stats.get(workspace) as { blocks: number; bytes: number };
  }

  async blockTotals(): Promise<{ blocks: number; bytes: number; referencedBytes: number; logicalBytes: number }> {
    return this.s.totals.get() as { blocks: number; bytes: number; referencedBytes: number; logicalBytes: number };
  }
}

/** One commit's reads and writes, inside the engine's transaction. */
class SqliteCommitTxn implements CommitTxn {
  readonly version: number;
  readonly inodes: number;
  /** Live rows this commit read, so ending one does not read it again. */
  private readonly rows = new Map<string, Row>();
  /** Sizes of the blocks this commit referenced (a block's size never changes). */
  private readonly sizes = new Map<string, number>();

  constructor(
    private readonly s: Record<string, Stmt>,
    private readonly st: VolumeState,
  ) {
    this.version = st.latest + 1;
    this.inodes = st.inodes;
  }

  private row(path: string): Row | undefined {
    let row = this.rows.get(path);
    if (!row) {
      row = this.s.live.get(this.st.volume, path) as Row | undefined;
      if (row) this.rows.set(path, row);
    }
    return row;
  }

  live(path: string): ManifestEntry | undefined {
    const row = this.row(path);
    return row && toEntry(row);
  }

  liveBelow(dir: string): ManifestEntry[] {
    const { low, high } = subtreeBounds(dir);
    return (this.s.liveSubtree.all(this.st.volume, low, high) as Row[]).map((r) => {
      this.rows.set(r.path, r);
      return toEntry(r);
    });
  }

  childCount(dir: string): number {
    return this.s.countChildren.get(this.st.volume, dir) as number;
  }

  end(path: string): void {
    const row = this.row(path);
    if (!row) return;
    this.rows.delete(path);
    if (row.valid_from === this.version) {
      // Written earlier in this very commit: no version ever saw it.
      this.s.drop.run(this.st.volume, path, row.valid_from);
      for (const hash of packedHashes(row.blocks)) this.s.unref.run(this.st.workspace, hash);
    } else {
      this.s.close.run(this.version, this.st.volume, path);
    }
  }

  insert(entry: ManifestEntry): number[] {
    const blocks = entry.type === "file" ? packBlocks(entry.blocks ?? []) : null;
    const sizes: number[] = [];
    for (const hash of packedHashes(blocks)) {
      if (this.s.ref.run(this.st.workspace, hash).changes === 0) {
        throw invalid(`Block ${hash} has not been uploaded (upload missing blocks before committing)`);
      }
      // (An UPDATE … RETURNING size cost twice this pair; files sharing blocks read each size once.)
      let size = this.sizes.get(hash);
      if (size === undefined) {
        size = this.s.size.get(this.st.workspace, hash) as number;
        this.sizes.set(hash, size);
      }
      sizes.push(size);
    }
    // Not cached: a Map of every row a 20,000-entry commit writes cost a third more CPU (GC);
    // ending a row this commit wrote reads it back instead (rare: a path put twice in one commit).
    const target = entry.type === "symlink" ? (entry.target ?? "") : null;
    this.s.insert.run(this.st.volume, entry.path, this.version, parentOf(entry.path), entry.type, entry.mode, entry.size, Math.trunc(entry.mtimeMs), blocks, target, ...metaValues(entry));
    return sizes;
  }
}
