import type { FastifyBaseLogger } from "fastify";
import type { BlobStore } from "../blobs/index.js";
import type { BlockIndex } from "./block-index.js";
import type { KeyLock } from "./key-lock.js";
import type { ManifestStore, VolumeState } from "./manifest-store.js";
import type { PinStore } from "./pin-store.js";

const CHUNK = 2000;
/** The orphan sweep lists every blob file: do it on the first pass after a start and every this many passes. */
const SWEEP_EVERY = 12;

export interface GcSettings {
  /** Versions younger than this stay readable (the latest always does, and so does every version from the oldest live pin on). */
  retentionMs: number;
  /** Unreferenced blocks touched (uploaded, or reported present) more recently than this are kept. */
  blockGraceMs: number;
}

/**
 * Garbage collection: rows no retained version can see are dropped (their block references
 * with them), then blocks nothing references and nobody touched recently are deleted from the
 * index and the blob store. Works in small transactions so commits interleave.
 */
export class VolumeGc {
  /** Since start: passes finished and failed, and what they deleted (read by the metrics). */
  readonly totals = { passes: 0, failedPasses: 0, blocksFreed: 0, bytesFreed: 0 };
  private running: Promise<void> | undefined;
  /** Passes until the next sweep for blob files the index does not know (only a crash leaves them). */
  private passesUntilSweep = 0;
  private readonly s;

  constructor(
    private readonly store: ManifestStore,
    private readonly blocks: BlockIndex,
    private readonly pins: PinStore,
    private readonly blobs: BlobStore,
    private readonly settings: GcSettings,
    private readonly log: FastifyBaseLogger,
    /** Shared with block uploads, so a re-upload never races the delete of the same block. */
    private readonly blockLock: KeyLock,
  ) {
    const db = store.db;
    this.s = {
      states: db.prepare("SELECT * FROM volume_state"),
      workspaces: db.prepare("SELECT DISTINCT workspace FROM blocks").pluck(),
      firstRetained: db.prepare("SELECT min(version) FROM versions WHERE volume = ? AND created_at >= ?").pluck(),
      expired: db.prepare("SELECT rowid AS id, blocks FROM entries WHERE volume = ? AND valid_to <= ? LIMIT ?"),
      all: db.prepare("SELECT rowid AS id, blocks FROM entries WHERE volume = ? LIMIT ?"),
      dropRow: db.prepare("DELETE FROM entries WHERE rowid = ?"),
      dropVersions: db.prepare("DELETE FROM versions WHERE volume = ? AND version < ?"),
      dropAllVersions: db.prepare("DELETE FROM versions WHERE volume = ?"),
      setOldest: db.prepare("UPDATE volume_state SET oldest = ? WHERE volume = ?"),
      dropState: db.prepare("DELETE FROM volume_state WHERE volume = ?"),
    };
  }

  /** One full pass (concurrent callers share the pass in progress). */
  run(now = Date.now()): Promise<void> {
    this.running ??= this.pass(now)
      .then(
        () => void this.totals.passes++,
        (err: unknown) => {
          this.totals.failedPasses++;
          throw err;
        },
      )
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Resolves once no pass is in progress (for shutdown). */
  async settled(): Promise<void> {
    await this.running?.catch(() => {});
  }

  private async pass(now: number): Promise<void> {
    // Forget lapsed pins before ignoring them: a pin still stored still protects its version.
    this.pins.dropExpired(now);
    for (const st of this.s.states.all() as VolumeState[]) await this.expireVersions(st, now);
    const sweep = this.passesUntilSweep-- <= 0;
    if (sweep) this.passesUntilSweep = SWEEP_EVERY;
    for (const ws of this.s.workspaces.all() as string[]) await this.collectBlocks(ws, now, sweep);
  }

  private async expireVersions(st: VolumeState, now: number): Promise<void> {
    const first = this.s.firstRetained.get(st.volume, now - this.settings.retentionMs) as number | null;
    const oldest = Math.min(first ?? st.latest, st.latest, this.pins.oldest(st.volume, now) ?? st.latest);
    if (oldest > st.oldest) {
      // Advanced before the rows go (synchronously, right after reading the pins): from here on
      // reads and new pins of the dropped versions are refused, so none sees a half-dropped version.
      this.store.db.transaction(() => {
        this.s.dropVersions.run(st.volume, oldest);
        this.s.setOldest.run(oldest, st.volume);
      })();
    }
    // Also when oldest did not move: finishes a drop that a crash cut short.
    await this.dropRows(st.workspace, () => this.s.expired.all(st.volume, oldest, CHUNK) as RowRef[]);
  }

  /** Drops every row and version of a deleted volume, then its workspace's unreferenced blocks. Idempotent. */
  async purge(volume: string, workspace: string, now = Date.now()): Promise<void> {
    await this.dropRows(workspace, () => this.s.all.all(volume, CHUNK) as RowRef[]);
    this.store.db.transaction(() => {
      this.s.dropAllVersions.run(volume);
      this.s.dropState.run(volume);
      this.pins.dropVolume(volume);
    })();
    await this.collectBlocks(workspace, now, false);
  }

  private async dropRows(workspace: string, next: () => RowRef[]): Promise<void> {
    const chunk = this.store.db.transaction((rows: RowRef[]) => {
      for (const r of rows) {
        this.s.dropRow.run(r.id);
        this.blocks.dropRefs(workspace, r.blocks);
      }
    });
    for (let rows = next(); rows.length > 0; rows = next()) {
      chunk(rows);
      // Let requests in between chunks: a big volume's rows take a while.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Deletes the workspace's blocks nothing references; with `sweep`, also blob files the index does not know (a crash's leftovers). */
  async collectBlocks(workspace: string, now: number, sweep: boolean): Promise<number> {
    const cutoff = now - this.settings.blockGraceMs;
    let deleted = 0;
    for (let batch = this.blocks.collectable(workspace, cutoff, CHUNK); batch.length > 0; batch = this.blocks.collectable(workspace, cutoff, CHUNK)) {
      // Held across forget and delete, so a re-upload of the same block waits for the delete.
      await this.blockLock.withAll(
        batch.map((hash) => `${workspace}/${hash}`),
        async () => {
          const sizes = batch.map((hash) => this.blocks.size(workspace, hash) ?? 0);
          // Forget first: from then on a block is "missing" and a committer re-uploads it.
          const places = this.blocks.forget(workspace, batch, cutoff);
          await this.blobs.deleteMany(workspace, batch.filter((_, i) => places[i] === "blob"));
          deleted += places.filter((p) => p !== undefined).length;
          places.forEach((p, i) => {
            if (p === undefined) return;
            this.totals.blocksFreed++;
            this.totals.bytesFreed += sizes[i]!;
          });
        },
      );
    }
    for await (const blob of sweep ? this.blobs.list(workspace) : []) {
      if (blob.mtimeMs >= cutoff) continue;
      await this.blockLock.with(`${workspace}/${blob.hash}`, async () => {
        if (this.blocks.size(workspace, blob.hash) !== undefined) return;
        await this.blobs.delete(workspace, blob.hash);
        deleted++;
        this.totals.blocksFreed++;
        this.totals.bytesFreed += blob.size;
      });
    }
    if (deleted > 0) this.log.info({ workspace, deleted }, "volume GC deleted unreferenced blocks");
    return deleted;
  }
}

interface RowRef {
  id: number;
  blocks: Buffer | null;
}
