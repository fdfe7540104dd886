import { INLINE_BLOCK_MAX } from "../../protocol/volume.js";
import type { Sqlite } from "../db.js";
import { invalid } from "../errors.js";
import { type Clock, systemClock } from "../../lib/clock.js";

/** Raw 32-byte hashes concatenated: how a file's block list is stored in a manifest row. */
export const packHashes = (hashes: readonly string[]): Buffer => Buffer.from(hashes.join(""), "hex");

export function unpackHashes(packed: Buffer | null): string[] {
  if (!packed) return [];
  const out: string[] = [];
  for (let i = 0; i < packed.length; i += 32) out.push(packed.subarray(i, i + 32).toString("hex"));
  return out;
}

/** Blocks up to this size are kept inline in the index (SQLite) rather than as one blob each. */
export const INLINE_MAX = INLINE_BLOCK_MAX;

/**
 * Which blocks a workspace holds and how many manifest rows reference each. Small blocks
 * (≤ INLINE_MAX) live inline here: an fsync per 4 KiB file would dominate small-file uploads.
 * A block with no references and no recent touch (upload, or "is it missing?" answered no)
 * may be collected; touching on every such answer is what makes an upload→commit safe
 * against a concurrent GC pass.
 */
export class BlockIndex {
  private readonly stmt;

  constructor(
    private readonly db: Sqlite,
    /** Time for the touches that give fresh blocks their grace period. */
    private readonly clock: Clock = systemClock,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS blocks (
        workspace TEXT NOT NULL, hash TEXT NOT NULL, size INTEGER NOT NULL, refs INTEGER NOT NULL DEFAULT 0,
        touched_at INTEGER NOT NULL, data BLOB, PRIMARY KEY (workspace, hash));
      CREATE INDEX IF NOT EXISTS blocks_collectable ON blocks (workspace, refs, touched_at);
    `);
    this.stmt = {
      touch: db.prepare("UPDATE blocks SET touched_at = ? WHERE workspace = ? AND hash = ?"),
      uploaded: db.prepare(
        `INSERT INTO blocks (workspace, hash, size, refs, touched_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT (workspace, hash) DO UPDATE SET touched_at = excluded.touched_at`,
      ),
      inline: db.prepare(
        `INSERT INTO blocks (workspace, hash, size, refs, touched_at, data) VALUES (?, ?, ?, 0, ?, ?)
         ON CONFLICT (workspace, hash) DO UPDATE SET touched_at = excluded.touched_at, data = coalesce(data, excluded.data)`,
      ),
      data: db.prepare("SELECT data FROM blocks WHERE workspace = ? AND hash = ?").pluck(),
      ref: db.prepare("UPDATE blocks SET refs = refs + ? WHERE workspace = ? AND hash = ?"),
      size: db.prepare("SELECT size FROM blocks WHERE workspace = ? AND hash = ?").pluck(),
      collectable: db
        .prepare("SELECT hash FROM blocks WHERE workspace = ? AND refs <= 0 AND touched_at < ? LIMIT ?")
        .pluck(),
      forget: db
        .prepare("DELETE FROM blocks WHERE workspace = ? AND hash = ? AND refs <= 0 AND touched_at < ? RETURNING data IS NULL")
        .pluck(),
      stats: db.prepare("SELECT count(*) AS blocks, coalesce(sum(size), 0) AS bytes FROM blocks WHERE workspace = ?"),
      totals: db.prepare(
        `SELECT count(*) AS blocks, coalesce(sum(size), 0) AS bytes,
                coalesce(sum(CASE WHEN refs > 0 THEN size END), 0) AS referencedBytes,
                coalesce(sum(CASE WHEN refs > 0 THEN size * refs END), 0) AS logicalBytes FROM blocks`,
      ),
    };
  }

  /** The hashes the store lacks; the present ones count as touched now. */
  missing(workspace: string, hashes: readonly string[], now = this.clock.now()): string[] {
    // One transaction: one WAL sync for the lot, not one per touched block.
    return this.db.transaction(() => hashes.filter((hash) => this.stmt.touch.run(now, workspace, hash).changes === 0))();
  }

  uploaded(workspace: string, hash: string, size: number, now = this.clock.now()): void {
    this.stmt.uploaded.run(workspace, hash, size, now);
  }

  /** Stores small blocks in the index itself: one transaction (one fsync) for the lot. */
  storeInline(workspace: string, blocks: ReadonlyArray<{ hash: string; data: Uint8Array }>, now = this.clock.now()): void {
    this.db.transaction(() => {
      for (const b of blocks) this.stmt.inline.run(workspace, b.hash, b.data.length, now, b.data);
    })();
  }

  /** A block's bytes if it is stored inline, else undefined (it is in the blob store, or absent). */
  inlineData(workspace: string, hash: string): Buffer | undefined {
    return (this.stmt.data.get(workspace, hash) as Buffer | null | undefined) ?? undefined;
  }

  /** A stored block's size, or undefined if the workspace has no such block. */
  size(workspace: string, hash: string): number | undefined {
    return this.stmt.size.get(workspace, hash) as number | undefined;
  }

  /** One more manifest row references these blocks; they must have been uploaded. */
  addRefs(workspace: string, packed: Buffer | null): void {
    for (const hash of unpackHashes(packed)) {
      if (this.stmt.ref.run(1, workspace, hash).changes === 0) {
        throw invalid(`Block ${hash} has not been uploaded (upload missing blocks before committing)`);
      }
    }
  }

  dropRefs(workspace: string, packed: Buffer | null): void {
    for (const hash of unpackHashes(packed)) this.stmt.ref.run(-1, workspace, hash);
  }

  collectable(workspace: string, touchedBefore: number, limit: number): string[] {
    return this.stmt.collectable.all(workspace, touchedBefore, limit) as string[];
  }

  /**
   * Drops blocks from the index that are still collectable, in one transaction: for each, "blob"
   * if the caller may now delete its blob, "inline" if it lived in the index, undefined if it is
   * not collectable (any more).
   */
  forget(workspace: string, hashes: readonly string[], touchedBefore: number): Array<"blob" | "inline" | undefined> {
    return this.db.transaction(() =>
      hashes.map((hash) => {
        const blob = this.stmt.forget.get(workspace, hash, touchedBefore) as number | undefined;
        return blob === undefined ? undefined : blob ? ("blob" as const) : ("inline" as const);
      }),
    )();
  }

  /**
   * Over every workspace: blocks and bytes stored; bytes of the referenced ones; and the bytes the
   * references add up to (a block in two file rows counts twice), which over `referencedBytes` is the dedup ratio.
   */
  totals(): { blocks: number; bytes: number; referencedBytes: number; logicalBytes: number } {
    return this.stmt.totals.get() as { blocks: number; bytes: number; referencedBytes: number; logicalBytes: number };
  }

  stats(workspace: string): { blocks: number; bytes: number } {
    return this.stmt.stats.get(workspace) as { blocks: number; bytes: number };
  }
}
