import { describe, expect, it } from "vitest";
import { BlockBuffer, BlockBuffers } from "./block-buffers.js";

describe("BlockBuffers", () => {
  it("hands a buffer out again only after its last holder released it", () => {
    const pool = new BlockBuffers(16);
    const a = pool.take();
    a.retain(); // a second holder (say, a cache-file write)
    a.release();
    const b = pool.take();
    expect(b.memory).not.toBe(a.memory);
    a.release();
    expect(pool.take().memory).toBe(a.memory);
    expect(pool.allocated).toBe(2);
  });

  it("refuses to release more often than retained, or to retain a recycled buffer", () => {
    const pool = new BlockBuffers(16);
    const a = pool.take();
    a.release();
    expect(() => a.release()).toThrow(/released more often/);
    expect(() => a.retain()).toThrow(/recycled/);
  });

  it("keeps at most its limit of free buffers", () => {
    const pool = new BlockBuffers(16, 2);
    const taken = [pool.take(), pool.take(), pool.take()];
    for (const t of taken) t.release();
    expect(pool.freeCount).toBe(2);
  });

  it("a block in its own buffer is never pooled", () => {
    const own = BlockBuffer.of(Buffer.from("made here"));
    own.release();
    expect(own.data.toString()).toBe("made here");
  });
});
