import { describe, expect, it } from "vitest";
import { blockListLength, compactBlocks, expandBlocks } from "../protocol/volume.js";
import { HOLE_LOOKALIKE, packBlocks, packedHashes, unpackBlocks } from "../services/volumes/block-list.js";

const h = (c: string) => c.repeat(64);

describe("block lists with holes (pure)", () => {
  it("compacts runs of zero blocks into one hole item and expands them back", () => {
    const perBlock = [null, null, h("a"), null, h("b"), h("b"), null, null, null];
    const compact = compactBlocks(perBlock);
    expect(compact).toEqual([2, h("a"), 1, h("b"), h("b"), 3]);
    expect([...expandBlocks(compact)]).toEqual(perBlock);
    expect(blockListLength(compact)).toBe(9);
    expect(compactBlocks([])).toEqual([]);
  });

  it("stores a list as 32 bytes per item and reads back exactly what was stored; holes reference no block", () => {
    const list = [h("a"), 131_071, h("f"), 1, Number.MAX_SAFE_INTEGER];
    const packed = packBlocks(list);
    expect(packed.length).toBe(32 * list.length);
    expect(unpackBlocks(packed)).toEqual(list);
    expect(packedHashes(packed)).toEqual([h("a"), h("f")]);
    expect(unpackBlocks(null)).toEqual([]);
    expect(packedHashes(null)).toEqual([]);
    // A hash whose first 24 bytes are zero would read back as a hole: commits refuse such hashes.
    expect(unpackBlocks(packBlocks([`${HOLE_LOOKALIKE}${"0".repeat(15)}7`]))).toEqual([7]);
  });
});
