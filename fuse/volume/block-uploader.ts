import type { VolumeRemote } from "./remote.js";

/** Blocks up to this size travel in batches (`uploadBlocks`), larger ones one per request. */
const SMALL_BLOCK = 64 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_COUNT = 1_000;

/**
 * Sends a commit's new blocks to the server, skipping those it already has. Small blocks (small
 * files) are gathered and sent many per request: a commit of 10,000 small files then costs a few
 * round trips, not 20,000.
 */
export class BlockUploader {
  private readonly small = new Map<string, Buffer>();
  private smallBytes = 0;

  constructor(private readonly remote: VolumeRemote) {}

  /** Uploads (or queues) blocks the server may lack. */
  async add(blocks: Array<{ hash: string; data: Buffer }>): Promise<void> {
    const large = blocks.filter((b) => b.data.length > SMALL_BLOCK);
    for (const b of blocks) {
      if (b.data.length > SMALL_BLOCK || this.small.has(b.hash)) continue;
      this.small.set(b.hash, b.data);
      this.smallBytes += b.data.length;
    }
    if (large.length > 0) {
      const missing = new Set(await this.remote.missingBlocks([...new Set(large.map((b) => b.hash))]));
      for (const b of large) if (missing.delete(b.hash)) await this.remote.uploadBlock(b.hash, b.data);
    }
    if (this.smallBytes >= BATCH_BYTES || this.small.size >= BATCH_COUNT) await this.flush();
  }

  /** Sends the queued small blocks; call before committing. */
  async flush(): Promise<void> {
    if (this.small.size === 0) return;
    const queued = [...this.small];
    this.small.clear();
    this.smallBytes = 0;
    const missing = await this.remote.missingBlocks(queued.map(([hash]) => hash));
    const byHash = new Map(queued);
    await this.remote.uploadBlocks(missing.map((hash) => ({ hash, data: byHash.get(hash)! })));
  }
}
