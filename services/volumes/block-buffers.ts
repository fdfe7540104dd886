import { BLOCK_SIZE } from "../../protocol/volume.js";

/**
 * Reused block-sized buffers for composing blocks. A fresh 8 MiB buffer pays a page fault per
 * 4 KiB page the first time it is written (~1 CPU-s per GiB on the development machine, plus
 * the garbage collector's work); a reused one pays nothing. A buffer goes back to the pool only
 * after its user finished without error: a failed store may leave a request that still reads it.
 */
export class BlockBuffers {
  private readonly free: Buffer[] = [];

  /** `keep`: buffers held between uses; more are allocated while that many are busy. */
  constructor(private readonly keep = 4) {}

  /** Runs `fn` with a buffer of `length` ≤ BLOCK_SIZE bytes of unspecified content. */
  async with<T>(length: number, fn: (buf: Buffer) => Promise<T>): Promise<T> {
    if (length > BLOCK_SIZE) throw new RangeError(`A block holds at most ${BLOCK_SIZE} bytes, not ${length}`);
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(BLOCK_SIZE);
    const result = await fn(buf.subarray(0, length));
    if (this.free.length < this.keep) this.free.push(buf);
    return result;
  }
}
