import { createHash, timingSafeEqual } from "node:crypto";
import type { Sqlite } from "../db.js";
import { type Migration, migrate } from "../sqlite-migrations.js";
import { alreadyExists, forbidden, invalid, notFound } from "../errors.js";
import { newId, newSecret } from "../ids.js";
import { checkName } from "../../protocol/names.js";
import type { IssuedToken, TokenInfo } from "../../protocol/objects.js";

export interface Workspace {
  id: string;
  name: string;
  createdAt: number;
}

export type { IssuedToken, TokenInfo };

export const DEFAULT_ENVIRONMENT = "main";

type TokenRow = Omit<TokenInfo, "admin"> & { admin: number };
const toToken = (r: TokenRow): TokenInfo => ({
  id: r.id,
  workspaceId: r.workspaceId,
  label: r.label,
  admin: r.admin === 1,
  createdAt: r.createdAt,
  revokedAt: r.revokedAt,
});

const hashSecret = (secret: string) => createHash("sha256").update(secret).digest();

/** The schema history of the auth tables in meta.sqlite, oldest first (never edit a released step). */
const AUTH_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "workspaces, environments and tokens as silo wrote them before schema versions",
    up: (db) =>
      db.exec(`
      CREATE TABLE IF NOT EXISTS workspaces (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS environments (
        workspace_id TEXT NOT NULL REFERENCES workspaces(id), name TEXT NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (workspace_id, name));
      CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        secret_hash BLOB NOT NULL, label TEXT NOT NULL, admin INTEGER NOT NULL,
        created_at INTEGER NOT NULL, revoked_at INTEGER);
    `),
  },
  {
    version: 2,
    name: "who issued each token (null: silo serve, or a workspace's creation by an admin)",
    // Idempotent: homes of a development build between the releases may have the column already.
    up: (db) => {
      const columns = db.prepare("PRAGMA table_info(tokens)").all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === "issued_by")) db.exec("ALTER TABLE tokens ADD COLUMN issued_by TEXT");
    },
  },
];

/** Workspaces, their environments and their API tokens (secrets kept only as SHA-256). */
export class AuthStore {
  /** Verified tokens by id, so the hot path does one hash and no query; dropped on revoke. */
  private readonly cache = new Map<string, { hash: Buffer; token: TokenInfo }>();

  constructor(private readonly db: Sqlite) {
    migrate(db, "auth", AUTH_MIGRATIONS);
  }

  workspaceCount(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM workspaces").get() as { n: number }).n;
  }

  firstWorkspaceId(): string {
    const row = this.db.prepare("SELECT id FROM workspaces ORDER BY created_at, rowid LIMIT 1").get() as { id: string } | undefined;
    if (!row) throw notFound("Workspace");
    return row.id;
  }

  createWorkspace(name: string): Workspace {
    checkName(name, "workspace name");
    const ws: Workspace = { id: newId("ws"), name, createdAt: Date.now() };
    this.db.transaction(() => {
      if (this.db.prepare("SELECT 1 FROM workspaces WHERE name = ?").get(name)) {
        throw alreadyExists(`Workspace '${name}'`);
      }
      this.db.prepare("INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)").run(ws.id, name, ws.createdAt);
      this.db
        .prepare("INSERT INTO environments (workspace_id, name, created_at) VALUES (?, ?, ?)")
        .run(ws.id, DEFAULT_ENVIRONMENT, ws.createdAt);
    })();
    return ws;
  }

  getWorkspace(id: string): Workspace {
    const row = this.db.prepare("SELECT id, name, created_at AS createdAt FROM workspaces WHERE id = ?").get(id);
    if (!row) throw notFound(`Workspace '${id}'`);
    return row as Workspace;
  }

  /** `issuedBy`: the token that asked for this one (it may revoke it); none for silo serve's and owner tokens. */
  issueToken(workspaceId: string, label: string, admin = false, issuedBy: string | null = null): IssuedToken {
    const tokenId = newId("tk");
    const tokenSecret = newSecret();
    this.db
      .prepare(
        "INSERT INTO tokens (id, workspace_id, secret_hash, label, admin, created_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(tokenId, workspaceId, hashSecret(tokenSecret), label, admin ? 1 : 0, Date.now(), issuedBy);
    return { tokenId, tokenSecret };
  }

  /** The tokens `caller` may see: every token of its workspace for an admin, else only itself. */
  listTokens(caller: TokenInfo): TokenInfo[] {
    const where = caller.admin ? "workspace_id = ?" : "workspace_id = ? AND id = ?";
    const args = caller.admin ? [caller.workspaceId] : [caller.workspaceId, caller.id];
    return (
      this.db
        .prepare(
          `SELECT id, workspace_id AS workspaceId, label, admin, created_at AS createdAt, revoked_at AS revokedAt
           FROM tokens WHERE ${where} ORDER BY created_at DESC, rowid DESC`,
        )
        .all(...args) as TokenRow[]
    ).map(toToken);
  }

  /**
   * Revokes a token of the caller's workspace. Only an admin, or the token that issued it, may;
   * to anyone else a token they cannot see does not exist (NotFound), and their own is Forbidden.
   */
  revokeToken(caller: TokenInfo, tokenId: string): void {
    const row = this.db
      .prepare("SELECT issued_by AS issuedBy FROM tokens WHERE id = ? AND workspace_id = ? AND revoked_at IS NULL")
      .get(tokenId, caller.workspaceId) as { issuedBy: string | null } | undefined;
    if (!row) throw notFound(`Token '${tokenId}'`);
    if (!caller.admin && row.issuedBy !== caller.id) {
      if (tokenId === caller.id) throw forbidden("Only an admin or the token that issued this token can revoke it");
      throw notFound(`Token '${tokenId}'`);
    }
    this.db.prepare("UPDATE tokens SET revoked_at = ? WHERE id = ?").run(Date.now(), tokenId);
    this.cache.delete(tokenId);
  }

  /** Returns the token for a presented id and secret, or undefined if unknown, wrong or revoked. */
  verify(tokenId: string, secret: string): TokenInfo | undefined {
    let entry = this.cache.get(tokenId);
    if (!entry) {
      const row = this.db
        .prepare(
          `SELECT id, workspace_id AS workspaceId, secret_hash AS hash, label, admin, created_at AS createdAt,
                  revoked_at AS revokedAt FROM tokens WHERE id = ?`,
        )
        .get(tokenId) as (TokenRow & { hash: Buffer }) | undefined;
      if (!row || row.revokedAt !== null) return undefined;
      entry = { hash: row.hash, token: toToken(row) };
      this.cache.set(tokenId, entry);
    }
    return timingSafeEqual(entry.hash, hashSecret(secret)) ? entry.token : undefined;
  }

  createEnvironment(workspaceId: string, name: string): void {
    checkName(name, "environment name");
    const res = this.db
      .prepare("INSERT OR IGNORE INTO environments (workspace_id, name, created_at) VALUES (?, ?, ?)")
      .run(workspaceId, name, Date.now());
    if (res.changes === 0) throw alreadyExists(`Environment '${name}'`);
  }

  listEnvironments(workspaceId: string): Array<{ name: string; createdAt: number }> {
    return this.db
      .prepare("SELECT name, created_at AS createdAt FROM environments WHERE workspace_id = ? ORDER BY created_at, name")
      .all(workspaceId) as Array<{ name: string; createdAt: number }>;
  }

  /** Renames an environment row (the caller moves its objects in the same transaction). */
  renameEnvironment(workspaceId: string, name: string, newName: string): void {
    checkName(newName, "environment name");
    if (name === DEFAULT_ENVIRONMENT) throw invalid(`The '${DEFAULT_ENVIRONMENT}' environment cannot be renamed`);
    if (!this.hasEnvironment(workspaceId, name)) throw notFound(`Environment '${name}'`);
    if (newName === DEFAULT_ENVIRONMENT || this.hasEnvironment(workspaceId, newName)) throw alreadyExists(`Environment '${newName}'`);
    this.db.prepare("UPDATE environments SET name = ? WHERE workspace_id = ? AND name = ?").run(newName, workspaceId, name);
  }

  /** Drops an environment row; from then on requests naming it are refused (NotFound). */
  deleteEnvironment(workspaceId: string, name: string): void {
    if (name === DEFAULT_ENVIRONMENT) throw invalid(`The '${DEFAULT_ENVIRONMENT}' environment cannot be deleted`);
    const res = this.db.prepare("DELETE FROM environments WHERE workspace_id = ? AND name = ?").run(workspaceId, name);
    if (res.changes === 0) throw notFound(`Environment '${name}'`);
  }

  hasEnvironment(workspaceId: string, name: string): boolean {
    return !!this.db.prepare("SELECT 1 FROM environments WHERE workspace_id = ? AND name = ?").get(workspaceId, name);
  }
}
