import { describe, expect, it } from "vitest";
import { decode, encode } from "./dict-codec.js";

describe("dict codec", () => {
  it("round-trips the values a Dict promises to keep", () => {
    const values: unknown[] = [
      null,
      true,
      0,
      -1.5,
      2 ** 53 - 1,
      2n ** 63n - 1n,
      "text ✓",
      new Uint8Array([0, 1, 255]),
      [1, [2, [3]]],
      { a: 1, nested: { b: [true, null] } },
      new Map<unknown, unknown>([["k", 1], [2, "v"]]),
      new Set([1, "two"]),
      new Date(1_700_000_000_000),
    ];
    for (const v of values) expect(decode(encode(v)), String(v)).toEqual(v);
  });

  it("keeps plain objects and Maps apart, and cycles intact", () => {
    expect(decode(encode(new Map([["a", 1]])))).toBeInstanceOf(Map);
    expect(decode(encode({ a: 1 }))).not.toBeInstanceOf(Map);
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    const back = decode<{ self: unknown }>(encode(cyclic));
    expect(back.self).toBe(back);
  });

  it("encodes equal keys to equal bytes (key identity), and different keys to different bytes", () => {
    expect(encode({ a: 1, b: [2] }).equals(encode({ a: 1, b: [2] }))).toBe(true);
    expect(encode(["x", 1]).equals(encode(["x", 1]))).toBe(true);
    expect(encode(1).equals(encode("1"))).toBe(false);
    expect(encode(1).equals(encode(1n))).toBe(false);
  });
});
