import type { Sqlite } from "./db.js";

/** One step of a schema's history: `up` turns schema version `version - 1` into `version`. */
export interface Migration {
  version: number;
  /** What the step does, for the log and the error of a failed step. */
  name: string;
  up(db: Sqlite): void;
}

/**
 * Brings one component's tables (several components may share a SQLite file, e.g. meta.sqlite)
 * to the newest version of `migrations`, each step in its own transaction, in order. The version
 * reached is recorded per component in `schema_versions`, so a crash between steps resumes at the
 * next one. Migration 1 of every component is the schema as the release before versioning wrote
 * it (`IF NOT EXISTS`), so a home from that release upgrades in place. A home newer than this
 * code (a downgrade) is refused: its columns would be silently ignored or misread.
 * Returns the version the component was at before.
 */
export function migrate(db: Sqlite, component: string, migrations: readonly Migration[]): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`Migrations of ${component} must be numbered 1, 2, … in order (got ${m.version} at ${i + 1})`);
  });
  db.exec("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID");
  const read = db.prepare("SELECT version FROM schema_versions WHERE component = ?").pluck();
  const write = db.prepare(
    "INSERT INTO schema_versions (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version",
  );
  const before = (read.get(component) as number | undefined) ?? 0;
  if (before > migrations.length) {
    throw new Error(
      `The ${component} schema of this SILO_HOME is version ${before}, newer than this silo knows (${migrations.length}): run the newer silo`,
    );
  }
  for (const m of migrations.slice(before)) {
    try {
      db.transaction(() => {
        m.up(db);
        write.run(component, m.version);
      })();
    } catch (err) {
      throw new Error(`Upgrading the ${component} schema to version ${m.version} (${m.name}) failed, nothing of that step was kept: ${(err as Error).message}`);
    }
  }
  return before;
}

/** The schema version a component of this database is at (0: never migrated). */
export function schemaVersion(db: Sqlite, component: string): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'").get();
  if (!exists) return 0;
  return (db.prepare("SELECT version FROM schema_versions WHERE component = ?").pluck().get(component) as number | undefined) ?? 0;
}
