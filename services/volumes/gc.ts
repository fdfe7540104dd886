import type { FastifyBaseLogger } from "fastify";
import type { BlobStore } from "../blobs/index.js";
import type { KeyLock } from "./key-lock.js";
import type { ManifestStore } from "./manifest-store.js";

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

  constructor(
    private readonly store: ManifestStore,
    private readonly blobs: BlobStore,
    private readonly settings: GcSettings,
    private readonly log: FastifyBaseLogger,
    /** Shared with block uploads, so a re-upload never races the delete of the same block. */
    private readonly blockLock: KeyLock,
  ) {}

  /** One full pass (concurrent callers share the pass in progress). */
  run(now: number): Promise<void> {
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
    for (const st of await this.store.volumes()) {
      await this.store.expireVersions(st.volume, now - this.settings.retentionMs, now);
      // Also when the oldest version did not move: finishes a drop that a crash cut short.
      await this.inChunks(() => this.store.dropExpiredRows(st.volume, CHUNK));
    }
    const sweep = this.passesUntilSweep-- <= 0;
    if (sweep) this.passesUntilSweep = SWEEP_EVERY;
    for (const ws of await this.store.workspaces()) await this.collectBlocks(ws, now, sweep);
  }

  /** Drops every row and version of a deleted volume, then its workspace's unreferenced blocks. Idempotent. */
  async purge(volume: string, workspace: string, now: number): Promise<void> {
    await this.inChunks(() => this.store.purgeRows(volume, CHUNK));
    await this.collectBlocks(workspace, now, false);
  }

  /** Runs a chunked step until it does nothing, letting requests in between chunks (a big volume's rows take a while). */
  private async inChunks(step: () => Promise<number>): Promise<void> {
    while ((await step()) > 0) await new Promise((r) => setImmediate(r));
  }

  /** Deletes the workspace's blocks nothing references; with `sweep`, also blob files the index does not know (a crash's leftovers). */
  async collectBlocks(workspace: string, now: number, sweep: boolean): Promise<number> {
    const cutoff = now - this.settings.blockGraceMs;
    let deleted = 0;
    const next = () => this.store.collectableBlocks(workspace, cutoff, CHUNK);
    for (let batch = await next(); batch.length > 0; batch = await next()) {
      // Held across forget and delete, so a re-upload of the same block waits for the delete.
      await this.blockLock.withAll(
        batch.map((hash) => `${workspace}/${hash}`),
        async () => {
          const sizes = await Promise.all(batch.map(async (hash) => (await this.store.blockSize(workspace, hash)) ?? 0));
          // Forget first: from then on a block is "missing" and a committer re-uploads it.
          const places = await this.store.forgetBlocks(workspace, batch, cutoff);
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
        if ((await this.store.blockSize(workspace, blob.hash)) !== undefined) return;
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
