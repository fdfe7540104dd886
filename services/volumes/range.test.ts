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

  it("never yields a range outside the file or running backwards", () => {
    for (const header of ["bytes=20-", "bytes=20-30", "bytes=5-2", "bytes=10-10"]) {
      const r = parseRange(header, 10)!;
      expect(r.start, header).toBeLessThanOrEqual(r.end);
      expect(r.end, header).toBeLessThanOrEqual(10);
    }
  });

  it("refuses what it does not support with INVALID", () => {
    for (const header of ["bytes=-", "bytes=1-2,4-5", "bits=0-1", "bytes=a-b", "bytes=1"]) {
      expect(() => parseRange(header, 10), header).toThrow(expect.objectContaining({ code: "INVALID" }));
    }
  });
});
