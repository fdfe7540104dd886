import type { DiskReserve } from "../disk-reserve.js";
import type { Caller } from "../auth/authenticate.js";
import type { Sqlite, Statement } from "../db.js";
import { type Migration, migrate } from "../sqlite-migrations.js";
import { alreadyExists, notFound } from "../errors.js";
import { newId } from "../ids.js";
import { checkName } from "../../protocol/names.js";
import { type Clock, systemClock } from "../../lib/clock.js";
import type { ObjectRecord } from "../../protocol/objects.js";

export type { ObjectRecord };

/** What a kind (dict, queue, volume, …) tells the registry about itself. */
export interface KindDefinition {
  /** Id prefix, e.g. `di` for dicts. */
  prefix: string;
  /** Checks and completes creation options; throws InvalidError on bad ones. */
  normalizeOptions?(options: Record<string, unknown>): Record<string, unknown>;
  /** Drops all data of a deleted object. Must be idempotent: it is retried after a crash. */
  purge(record: ObjectRecord): void | Promise<void>;
}

interface Row {
  id: string;
  kind: string;
  name: string | null;
  workspace_id: string;
  environment: string;
  created_at: number;
  ephemeral: number;
  options: string;
}

const toRecord = (r: Row): ObjectRecord => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  workspaceId: r.workspace_id,
  environment: r.environment,
  createdAt: r.created_at,
  ephemeral: r.ephemeral === 1,
  options: JSON.parse(r.options) as Record<string, unknown>,
});

const LIVE = "deleted_at IS NULL";
const MAX_REMEMBERED_OWNERS = 100_000;

/** The schema history of the object registry in meta.sqlite, oldest first (never edit a released step). */
const OBJECT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "objects as silo wrote them before schema versions",
    up: (db) =>
      db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, workspace_id TEXT NOT NULL,
        environment TEXT NOT NULL, created_at INTEGER NOT NULL, ephemeral INTEGER NOT NULL DEFAULT 0,
        heartbeat_at INTEGER, options TEXT NOT NULL DEFAULT '{}', deleted_at INTEGER);
      CREATE UNIQUE INDEX IF NOT EXISTS objects_by_name ON objects (workspace_id, environment, kind, name)
        WHERE name IS NOT NULL AND deleted_at IS NULL;
      CREATE INDEX IF NOT EXISTS objects_by_created ON objects (workspace_id, environment, kind, created_at);
    `),
  },
];

/**
 * The registry of named objects shared by every kind. Deletion is two-phase (mark, purge the
 * kind's data, drop the row) so a crash in between never leaks data: pending purges resume at start.
 */
export class ObjectRegistry {
  private readonly kinds = new Map<string, KindDefinition>();
  /** Owners of ids resolved before: every data request of every kind resolves its object id. */
  private readonly owners = new Map<string, { kind: string; workspaceId: string; environment: string }>();
  /** Prepared statements by SQL text: preparing is the costly part of a lookup on the hot path. */
  private readonly statements = new Map<string, Statement>();
  /** Whether an environment exists (the auth store knows); checked at every insert. */
  private environmentExists: (workspaceId: string, environment: string) => boolean = () => true;

  constructor(
    private readonly db: Sqlite,
    private readonly ephemeralTimeoutMs: number,
    /** Time for heartbeats and the ephemeral timeout (tests pass a TestClock). */
    private readonly clock: Clock = systemClock,
    /** Deletion must work on a full disk: its writes may use the disk reserve (see disk-reserve.ts). */
    private readonly reserve?: Pick<DiskReserve, "freeing">,
  ) {
    migrate(db, "objects", OBJECT_MIGRATIONS);
  }

  private sql(text: string): Statement {
    let stmt = this.statements.get(text);
    if (!stmt) {
      stmt = this.db.prepare(text);
      this.statements.set(text, stmt);
    }
    return stmt;
  }

  /**
   * Makes every insert check that its environment still exists: a request authenticated just
   * before its environment was deleted must not create an object there after the deletion
   * swept it (it would reappear if the name were used again).
   */
  checkEnvironmentsWith(exists: (workspaceId: string, environment: string) => boolean): void {
    this.environmentExists = exists;
  }

  registerKind(kind: string, def: KindDefinition): void {
    this.kinds.set(kind, def);
  }

  private kind(kind: string): KindDefinition {
    const def = this.kinds.get(kind);
    if (!def) throw notFound(`Object kind '${kind}'`);
    return def;
  }

  private findByName(caller: Caller, kind: string, name: string): ObjectRecord | undefined {
    const row = this.sql(`SELECT * FROM objects WHERE workspace_id = ? AND environment = ? AND kind = ? AND name = ? AND ${LIVE}`)
      .get(caller.workspaceId, caller.environment, kind, name) as Row | undefined;
    return row && toRecord(row);
  }

  private insert(caller: Caller, kind: string, name: string | null, options: Record<string, unknown>): ObjectRecord {
    const def = this.kind(kind);
    if (!this.environmentExists(caller.workspaceId, caller.environment)) throw notFound(`Environment '${caller.environment}'`);
    const now = this.clock.now();
    const record: ObjectRecord = {
      id: newId(def.prefix),
      kind,
      name,
      workspaceId: caller.workspaceId,
      environment: caller.environment,
      createdAt: now,
      ephemeral: name === null,
      options: def.normalizeOptions ? def.normalizeOptions(options) : {},
    };
    this.sql(
        `INSERT INTO objects (id, kind, name, workspace_id, environment, created_at, ephemeral, heartbeat_at, options)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(record.id, kind, name, caller.workspaceId, caller.environment, now, name === null ? 1 : 0, now, JSON.stringify(record.options));
    return record;
  }

  create(caller: Caller, kind: string, name: string, opts: { allowExisting?: boolean; options?: Record<string, unknown> } = {}): ObjectRecord {
    checkName(name, `${kind} name`);
    return this.db.transaction(() => {
      const existing = this.findByName(caller, kind, name);
      if (existing) {
        if (opts.allowExisting) return existing;
        throw alreadyExists(`${capital(kind)} '${name}'`);
      }
      return this.insert(caller, kind, name, opts.options ?? {});
    })();
  }

  lookup(caller: Caller, kind: string, name: string, opts: { createIfMissing?: boolean; options?: Record<string, unknown> } = {}): ObjectRecord {
    checkName(name, `${kind} name`);
    this.kind(kind);
    const found = this.findByName(caller, kind, name);
    if (found) return found;
    if (!opts.createIfMissing) throw notFound(`${capital(kind)} '${name}'`);
    return this.create(caller, kind, name, { allowExisting: true, options: opts.options });
  }

  createEphemeral(caller: Caller, kind: string, options: Record<string, unknown> = {}): ObjectRecord {
    return this.insert(caller, kind, null, options);
  }

  /** The object with this id, if the caller's workspace and environment own it. */
  get(caller: Caller, kind: string, id: string): ObjectRecord {
    const row = this.sql(`SELECT * FROM objects WHERE id = ? AND kind = ? AND workspace_id = ? AND environment = ? AND ${LIVE}`)
      .get(id, kind, caller.workspaceId, caller.environment) as Row | undefined;
    if (!row) throw notFound(`${capital(kind)} '${id}'`);
    return toRecord(row);
  }

  /** The object with this id if it is of one of `kinds` (NotFound naming the first kind otherwise). */
  getOfKinds(caller: Caller, kinds: ReadonlySet<string>, id: string): ObjectRecord {
    const row = this.sql(`SELECT * FROM objects WHERE id = ? AND workspace_id = ? AND environment = ? AND ${LIVE}`).get(
      id,
      caller.workspaceId,
      caller.environment,
    ) as Row | undefined;
    if (!row || !kinds.has(row.kind)) throw notFound(`${capital([...kinds][0] ?? "object")} '${id}'`);
    return toRecord(row);
  }

  /**
   * The id, if the caller's workspace and environment own this object of this kind (NotFoundError
   * otherwise, as `get`). Remembered, so the hot path of every kind skips the SQLite query; a
   * deletion forgets the id before the object's data is purged.
   */
  resolveId(caller: Caller, kind: string, id: string): string {
    const known = this.owners.get(id);
    if (known && known.kind === kind && known.workspaceId === caller.workspaceId && known.environment === caller.environment) return id;
    const record = this.get(caller, kind, id);
    if (this.owners.size >= MAX_REMEMBERED_OWNERS) this.owners.clear();
    this.owners.set(id, { kind, workspaceId: record.workspaceId, environment: record.environment });
    return id;
  }

  list(caller: Caller, kind: string, opts: { maxObjects?: number; createdBefore?: number } = {}): ObjectRecord[] {
    this.kind(kind);
    const rows = this.sql(
        `SELECT * FROM objects WHERE workspace_id = ? AND environment = ? AND kind = ? AND name IS NOT NULL AND ${LIVE}
           AND created_at < ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      )
      .all(caller.workspaceId, caller.environment, kind, opts.createdBefore ?? Number.MAX_SAFE_INTEGER, opts.maxObjects ?? -1) as Row[];
    return rows.map(toRecord);
  }

  rename(caller: Caller, kind: string, name: string, newName: string): ObjectRecord {
    checkName(newName, `${kind} name`);
    return this.db.transaction(() => {
      const record = this.lookup(caller, kind, name);
      if (this.findByName(caller, kind, newName)) throw alreadyExists(`${capital(kind)} '${newName}'`);
      this.sql("UPDATE objects SET name = ? WHERE id = ?").run(newName, record.id);
      return { ...record, name: newName };
    })();
  }

  heartbeat(caller: Caller, kind: string, id: string): void {
    const record = this.get(caller, kind, id);
    this.sql("UPDATE objects SET heartbeat_at = ? WHERE id = ?").run(this.clock.now(), record.id);
  }

  /** Deletes a named object; false if it did not exist (only with `allowMissing`: else NotFound). */
  async deleteByName(caller: Caller, kind: string, name: string, opts: { allowMissing?: boolean } = {}): Promise<boolean> {
    checkName(name, `${kind} name`);
    const found = this.findByName(caller, kind, name);
    if (!found) {
      if (opts.allowMissing) return false;
      throw notFound(`${capital(kind)} '${name}'`);
    }
    await this.remove(found);
    return true;
  }

  async deleteById(caller: Caller, kind: string, id: string): Promise<void> {
    await this.remove(this.get(caller, kind, id));
  }

  private async remove(record: ObjectRecord): Promise<void> {
    const freeing = <T>(fn: () => T): T => (this.reserve ? this.reserve.freeing(fn) : fn());
    freeing(() => this.sql("UPDATE objects SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL").run(this.clock.now(), record.id));
    this.owners.delete(record.id);
    await this.kind(record.kind).purge(record);
    freeing(() => this.sql("DELETE FROM objects WHERE id = ?").run(record.id));
  }

  /** Deletes ephemeral objects whose creator stopped heart-beating (crashed or lost). */
  async reapEphemeral(now = this.clock.now()): Promise<number> {
    const rows = this.sql(`SELECT * FROM objects WHERE ephemeral = 1 AND ${LIVE} AND heartbeat_at < ?`)
      .all(now - this.ephemeralTimeoutMs) as Row[];
    for (const row of rows) await this.remove(toRecord(row));
    return rows.length;
  }

  /** Finishes deletions a crash interrupted. */
  async resumePurges(): Promise<void> {
    const rows = this.sql("SELECT * FROM objects WHERE deleted_at IS NOT NULL").all() as Row[];
    for (const row of rows) {
      if (!this.kinds.has(row.kind)) continue;
      await this.remove(toRecord(row));
    }
  }

  /** Every live object of an environment, of any kind, named or ephemeral. */
  inEnvironment(workspaceId: string, environment: string): ObjectRecord[] {
    return (this.sql(`SELECT * FROM objects WHERE workspace_id = ? AND environment = ? AND ${LIVE} ORDER BY created_at`).all(workspaceId, environment) as Row[]).map(
      toRecord,
    );
  }

  /** Deletes one object (as `deleteById`, for a caller that already holds the record). */
  async delete(record: ObjectRecord): Promise<void> {
    await this.remove(record);
  }

  /**
   * Moves every object of an environment to another name. Runs inside the caller's transaction
   * (the environment row changes with it); the remembered owners of those ids are forgotten.
   */
  renameEnvironment(workspaceId: string, from: string, to: string): void {
    this.sql("UPDATE objects SET environment = ? WHERE workspace_id = ? AND environment = ?").run(to, workspaceId, from);
    for (const [id, owner] of this.owners) if (owner.workspaceId === workspaceId && owner.environment === from) this.owners.delete(id);
  }

  /** Every live object of a kind (for a kind's own maintenance, e.g. TTL sweeps). */
  allOfKind(kind: string): ObjectRecord[] {
    return (this.sql(`SELECT * FROM objects WHERE kind = ? AND ${LIVE}`).all(kind) as Row[]).map(toRecord);
  }

  /** Live objects per kind over every workspace (for metrics); kinds without objects are absent. */
  countByKind(): Array<{ kind: string; objects: number }> {
    return this.sql(`SELECT kind, count(*) AS objects FROM objects WHERE ${LIVE} GROUP BY kind`).all() as Array<{ kind: string; objects: number }>;
  }
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

