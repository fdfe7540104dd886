import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../test/helpers/prng.js";
import { Extents } from "./extents.js";

describe("Extents", () => {
  it("merges overlapping and touching ranges, keeps apart ones apart, in order", () => {
    const x = new Extents();
    x.add(100, 200);
    x.add(300, 400);
    x.add(0, 10);
    expect(x.toJSON()).toEqual([0, 10, 100, 200, 300, 400]);
    x.add(200, 250); // touches the end of [100, 200)
    expect(x.toJSON()).toEqual([0, 10, 100, 250, 300, 400]);
    x.add(150, 350); // overlaps two
    expect(x.toJSON()).toEqual([0, 10, 100, 400]);
    x.add(5, 5); // empty: nothing
    x.add(10, 100); // closes the gap exactly
    expect(x.toJSON()).toEqual([0, 400]);
    expect(x.count).toBe(1);
    expect(new Extents([50, 60, 0, 10, 5, 55]).toJSON()).toEqual([0, 60]);
  });

  it("clip drops what lies past a cut and shortens the range it falls in", () => {
    const x = new Extents([0, 10, 20, 30, 40, 50]);
    x.clip(25);
    expect(x.toJSON()).toEqual([0, 10, 20, 25]);
    x.clip(20);
    expect(x.toJSON()).toEqual([0, 10]);
    x.clip(0);
    expect(x.empty).toBe(true);
  });

  it("covers, span and pieces describe where a read takes its bytes from", () => {
    const x = new Extents([10, 20, 30, 40]);
    expect(x.covers(12, 18)).toBe(true);
    expect(x.covers(15, 35)).toBe(false);
    expect(x.covers(5, 5)).toBe(true);
    expect(x.span).toEqual([10, 40]);
    expect(x.pieces(0, 50)).toEqual([
      [0, 10, false],
      [10, 20, true],
      [20, 30, false],
      [30, 40, true],
      [40, 50, false],
    ]);
    expect(x.pieces(15, 35)).toEqual([
      [15, 20, true],
      [20, 30, false],
      [30, 35, true],
    ]);
    expect(x.pieces(22, 28)).toEqual([[22, 28, false]]);
    expect(new Extents().pieces(0, 5)).toEqual([[0, 5, false]]);
  });

  it("agrees with a byte map under random adds and clips", () => {
    const random = mulberry32(7);
    for (let round = 0; round < 50; round++) {
      const size = 200;
      const bytes = new Uint8Array(size);
      const x = new Extents();
      for (let op = 0; op < 30; op++) {
        const a = Math.floor(random() * size);
        const b = Math.min(size, a + Math.floor(random() * 40));
        if (random() < 0.85) {
          x.add(a, b);
          bytes.fill(1, a, b);
        } else {
          x.clip(a);
          bytes.fill(0, a);
        }
        // The flat list is sorted, disjoint and never adjacent.
        const flat = x.toJSON();
        for (let k = 1; k < flat.length; k++) expect(flat[k]! > flat[k - 1]!).toBe(true);
        const seen = new Uint8Array(size);
        for (const [s, e, w] of x.pieces(0, size)) if (w) seen.fill(1, s, e);
        // The first differing byte, not toEqual: 1,500 deep comparisons of 200 elements took
        // over the unit timeout on a loaded machine.
        expect(seen.findIndex((v, k) => v !== bytes[k])).toBe(-1);
        expect(x.covers(a, b)).toBe(bytes.subarray(a, b).every((v) => v === 1));
        expect(x.bytes).toBe(bytes.reduce((n, v) => n + v, 0));
      }
    }
  });
});
