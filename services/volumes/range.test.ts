import { describe, expect, it } from "vitest";
import { parseRange } from "./range.js";

describe("parseRange", () => {
  it("no header means the whole file (undefined)", () => {
    expect(parseRange(undefined, 10)).toBeUndefined();
    expect(parseRange("", 10)).toBeUndefined();
  });

  it("reads start-end (inclusive end), start- and -suffix, clipped to the size", () => {
    expect(parseRange("bytes=0-0", 10)).toEqual({ start: 0, end: 1 });
    expect(parseRange("bytes=2-5", 10)).toEqual({ start: 2, end: 6 });
    expect(parseRange(" bytes=7- ", 10)).toEqual({ start: 7, end: 10 });
    expect(parseRange("bytes=-3", 10)).toEqual({ start: 7, end: 10 });
    expect(parseRange("bytes=-30", 10)).toEqual({ start: 0, end: 10 });
    expect(parseRange("bytes=8-1000", 10)).toEqual({ start: 8, end: 10 });
  });

  it("answers a range that starts at or past the end RANGE_NOT_SATISFIABLE (416), never an empty or outside range", () => {
    for (const [header, size] of [["bytes=20-", 10], ["bytes=20-30", 10], ["bytes=10-10", 10], ["bytes=10-", 10], ["bytes=-0", 10], ["bytes=0-", 0], ["bytes=-5", 0]] as const) {
      expect(() => parseRange(header, size), header).toThrow(expect.objectContaining({ code: "RANGE_NOT_SATISFIABLE", status: 416 }));
    }
  });

  it("refuses what it does not support with INVALID", () => {
    for (const header of ["bytes=-", "bytes=1-2,4-5", "bits=0-1", "bytes=a-b", "bytes=1", "bytes=5-2"]) {
      expect(() => parseRange(header, 10), header).toThrow(expect.objectContaining({ code: "INVALID" }));
    }
  });
});
