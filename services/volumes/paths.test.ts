import { describe, expect, it } from "vitest";
import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { ancestors, joinPath, normalizePath, parentOf, subtreeBounds } from "./paths.js";

describe("volume paths", () => {
  it("normalises every spelling of a path to one stored form", () => {
    expect(normalizePath("/a//b/./c/")).toBe("a/b/c");
    expect(normalizePath("a/b")).toBe("a/b");
    expect(normalizePath("/")).toBe("");
    expect(normalizePath(".")).toBe("");
  });

  it("refuses .., NUL, non-strings and names or paths over the limits", () => {
    for (const bad of ["a/../b", "..", "a\0b", 5, null, `${"x".repeat(VOLUME_LIMITS.maxNameBytes + 1)}`]) {
      expect(() => normalizePath(bad), String(bad)).toThrow(expect.objectContaining({ code: "INVALID" }));
    }
    const long = Array.from({ length: Math.ceil(VOLUME_LIMITS.maxPathBytes / 10) + 1 }, () => "123456789").join("/");
    expect(() => normalizePath(long)).toThrow(/longer than/);
    // Names count in bytes, not characters.
    expect(() => normalizePath("é".repeat(VOLUME_LIMITS.maxNameBytes / 2 + 1))).toThrow(/longer than/);
  });

  it("parents, ancestors and joins agree with each other", () => {
    expect(parentOf("a/b/c")).toBe("a/b");
    expect(parentOf("a")).toBe("");
    expect(ancestors("a/b/c")).toEqual(["a", "a/b"]);
    expect(ancestors("a")).toEqual([]);
    expect(joinPath("", "x")).toBe("x");
    expect(joinPath(parentOf("a/b"), "b")).toBe("a/b");
  });

  it("subtree bounds hold exactly the paths below a directory in byte order", () => {
    const { low, high } = subtreeBounds("a");
    const inside = (p: string) => Buffer.compare(Buffer.from(p), Buffer.from(low)) > 0 && Buffer.compare(Buffer.from(p), Buffer.from(high)) < 0;
    expect(["a/b", "a/b/c", "a/~", "a/\u00ff"].every(inside)).toBe(true);
    expect(["a", "a-b", "a.b", "a0", "ab", "b/c"].some(inside)).toBe(false);
  });
});
