import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BATCH_BLOCK_MAX, BATCH_COUNT, type Block, type BlockTarget, BlockUploader } from "./block-uploader.js";

const hex = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const large = () => randomBytes(BATCH_BLOCK_MAX + 1);
/** Lets pending promise callbacks and I/O callbacks run (no clock involved). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/**
 * A server stand-in that stores blocks in memory and records every request; with `hold`, each
 * upload waits until the test releases it, so what is in flight at once is observable.
 */
class RecordingTarget implements BlockTarget {
  readonly stored = new Map<string, Uint8Array>();
  readonly missingCalls: string[][] = [];
  readonly singleUploads: string[] = [];
  readonly batchUploads: string[][] = [];
  inFlight = 0;
  maxInFlight = 0;
  failWith: Error | undefined;
  private held: Array<() => void> = [];
  private onHeld: (() => void) | undefined;

  constructor(private readonly hold = false) {}

  async missingBlocks(hashes: string[]): Promise<string[]> {
    this.missingCalls.push(hashes);
    return hashes.filter((h) => !this.stored.has(h));
  }

  async uploadBlock(hash: string, data: Uint8Array): Promise<void> {
    this.singleUploads.push(hash);
    await this.upload([{ hash, data }]);
  }

  async uploadBlocks(blocks: Block[]): Promise<void> {
    this.batchUploads.push(blocks.map((b) => b.hash));
    await this.upload(blocks);
  }

  private async upload(blocks: Block[]): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) {
        await new Promise<void>((r) => {
          this.held.push(r);
          this.onHeld?.();
        });
      }
      if (this.failWith) throw this.failWith;
      for (const b of blocks) {
        if (hex(b.data) !== b.hash) throw new Error(`bad hash ${b.hash}`);
        this.stored.set(b.hash, b.data);
      }
    } finally {
      this.inFlight--;
    }
  }

  /** Resolves once `n` uploads are being held. */
  async heldCount(n: number): Promise<void> {
    while (this.held.length < n) await new Promise<void>((r) => (this.onHeld = r));
  }

  get heldNow(): number {
    return this.held.length;
  }

  releaseOne(): void {
    this.held.shift()?.();
  }

  releaseAll(): void {
    for (const r of this.held.splice(0)) r();
  }
}

describe("BlockUploader", () => {
  it("names blocks by their SHA-256", async () => {
    const target = new RecordingTarget();
    const up = new BlockUploader(target);
    for (const data of [Buffer.alloc(0), randomBytes(10), randomBytes(300 * 1024), randomBytes(3 * 1024 * 1024)]) {
      expect(await up.add(data)).toBe(hex(data));
    }
    await up.flush();
    expect(target.stored.size).toBe(4);
  });

  it("stores every block once, skipping what it saw and what the server has", async () => {
    const target = new RecordingTarget();
    const present = randomBytes(100);
    target.stored.set(hex(present), present);
    let progress = 0;
    const up = new BlockUploader(target, { onProgress: (n) => (progress += n) });
    const a = randomBytes(100);
    const big = large();
    const hashes = [await up.add(a), await up.add(a), await up.add(present), await up.add(big), await up.add(big, hex(big))];
    await up.flush();
    expect(hashes).toEqual([hex(a), hex(a), hex(present), hex(big), hex(big)]);
    expect([...up.hashes].sort()).toEqual([hex(a), hex(present), hex(big)].sort());
    // `present` was asked about but never sent; `a` went in a batch, `big` on its own.
    expect(target.batchUploads).toEqual([[hex(a)]]);
    expect(target.singleUploads).toEqual([hex(big)]);
    expect(target.stored.size).toBe(3);
    expect(progress).toBe(2 * a.length + present.length + 2 * big.length);
  });

  it("gathers small blocks into batches of at most BATCH_COUNT", async () => {
    const target = new RecordingTarget();
    const up = new BlockUploader(target);
    const n = BATCH_COUNT * 2 + 7;
    for (let i = 0; i < n; i++) await up.add(randomBytes(64));
    await up.flush();
    expect(target.batchUploads.map((b) => b.length)).toEqual([BATCH_COUNT, BATCH_COUNT, 7]);
    expect(target.missingCalls).toHaveLength(3);
    expect(target.stored.size).toBe(n);
  });

  it("sends large blocks several at a time, never more than `concurrency`", async () => {
    const target = new RecordingTarget(true);
    const up = new BlockUploader(target, { concurrency: 3, maxBytes: 1 << 30 });
    for (let i = 0; i < 8; i++) await up.add(large());
    await target.heldCount(3);
    await settle();
    expect(target.heldNow).toBe(3);
    const flushed = up.flush();
    for (let released = 0; released < 8; released++) {
      await target.heldCount(1);
      target.releaseOne();
    }
    await flushed;
    expect(target.maxInFlight).toBe(3);
    expect(target.singleUploads).toHaveLength(8);
    expect(target.stored.size).toBe(8);
  });

  it("makes `add` wait while `maxBytes` are held", async () => {
    const target = new RecordingTarget(true);
    const block = BATCH_BLOCK_MAX + 1;
    const up = new BlockUploader(target, { concurrency: 8, maxBytes: 2 * block });
    await up.add(large());
    await up.add(large());
    let third = false;
    const adding = up.add(large()).then(() => (third = true));
    await target.heldCount(2);
    await settle();
    expect(third).toBe(false);
    target.releaseOne();
    await adding;
    expect(third).toBe(true);
    const flushed = up.flush();
    await target.heldCount(2);
    target.releaseAll();
    await flushed;
    expect(target.maxInFlight).toBe(2);
  });

  it("sends a partial batch rather than wait for memory it holds itself", async () => {
    const target = new RecordingTarget();
    const up = new BlockUploader(target, { maxBytes: 10 * 1024 });
    for (let i = 0; i < 100; i++) await up.add(randomBytes(1024));
    await up.flush();
    expect(target.stored.size).toBe(100);
    expect(target.batchUploads.length).toBeGreaterThanOrEqual(10);
  });

  it("fails later adds and the flush with the first upload failure, and sends nothing more", async () => {
    const target = new RecordingTarget(true);
    const up = new BlockUploader(target, { concurrency: 1 });
    await up.add(large());
    await up.add(large());
    await target.heldCount(1);
    target.failWith = new Error("disk full");
    target.releaseOne();
    await expect(up.flush()).rejects.toThrow("disk full");
    await expect(up.add(large())).rejects.toThrow("disk full");
    expect(target.singleUploads).toHaveLength(1);
    expect(target.stored.size).toBe(0);
  });

  it("hands a buffer back (`done`) only once the request carrying its block was answered, and never after a failure", async () => {
    const target = new RecordingTarget(true);
    const up = new BlockUploader(target, { concurrency: 2 });
    const done: string[] = [];
    const big = large();
    const small = randomBytes(100);
    await up.add(big, undefined, () => done.push("big"));
    await up.add(big, undefined, () => done.push("repeat")); // a repeat: nothing in flight reads it
    await up.add(small, undefined, () => done.push("small"));
    const flushed = up.flush();
    await target.heldCount(2);
    await settle();
    expect(done).toEqual(["repeat"]);
    target.releaseAll();
    await flushed;
    expect(done.sort()).toEqual(["big", "repeat", "small"]);

    const failing = new RecordingTarget(true);
    const up2 = new BlockUploader(failing);
    let handed = false;
    await up2.add(large(), undefined, () => (handed = true));
    await failing.heldCount(1);
    failing.failWith = new Error("connection reset");
    failing.releaseOne();
    await expect(up2.flush()).rejects.toThrow("connection reset");
    expect(handed).toBe(false);
  });
});
