import { describe, expect, it } from "vitest";
import type { ManifestEntry } from "../../protocol/volume.js";
import { CommittedEntries } from "./committed-entries.js";
import { Listing } from "./listing.js";

const file = (path: string): ManifestEntry => ({ path, type: "file", mode: 0o644, size: 0, mtimeMs: 0, blocks: [] });
const dir = (path: string): ManifestEntry => ({ path, type: "directory", mode: 0o755, size: 0, mtimeMs: 0 });
const listing = (...entries: ManifestEntry[]) => Listing.of(entries[0]!.path.includes("/") ? entries[0]!.path.slice(0, entries[0]!.path.lastIndexOf("/")) : "", entries);

describe("CommittedEntries", () => {
  it("answers by path what loads, commits and reloads recorded, and forgets a deleted directory's whole subtree", () => {
    const c = new CommittedEntries();
    c.setDir("", listing(dir("a"), dir("ab"), file("f")));
    c.setDir("a", listing(file("a/x"), dir("a/sub")));
    c.set(file("a/sub/y"));
    c.set(file("ab/z"));
    // A later load of a directory some entries of which were recorded already keeps them.
    c.setDir("a/sub", listing(file("a/sub/w")));
    expect(c.get("a/x")?.path).toBe("a/x");
    expect(c.get("a/sub/y")?.path).toBe("a/sub/y");
    expect(c.get("a/sub/w")?.path).toBe("a/sub/w");
    expect(c.get("a/nope")).toBeUndefined();
    c.set({ ...file("f"), size: 3 });
    expect(c.get("f")?.size).toBe(3);

    c.delete("a");
    for (const p of ["a", "a/x", "a/sub", "a/sub/y", "a/sub/w"]) expect(c.get(p)).toBeUndefined();
    // "ab" shares the prefix "a" but not the directory.
    expect(c.get("ab/z")?.path).toBe("ab/z");
    expect(c.get("ab")?.type).toBe("directory");

    c.delete("f");
    expect(c.get("f")).toBeUndefined();
    expect(c.get("ab")?.type).toBe("directory");
  });
});
