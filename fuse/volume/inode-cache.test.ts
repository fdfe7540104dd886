import { describe, expect, it } from "vitest";
import { InodeCache } from "./inode-cache.js";

describe("InodeCache", () => {
  it("drops the least recently used keys until at most the limit is held", () => {
    const c = new InodeCache<string>(10);
    c.add("a", 4);
    c.add("b", 4);
    c.add("c", 4);
    expect(c.size).toBe(12);
    expect(c.over).toBe(true);
    // "a" was used after "b": "b" is the coldest now.
    c.use("a");
    const tried: string[] = [];
    expect(
      c.trim((k) => {
        tried.push(k);
        return [k];
      }),
    ).toBe(1);
    expect(tried).toEqual(["b"]);
    expect(c.size).toBe(8);
    expect(c.has("b")).toBe(false);
    expect(c.over).toBe(false);
    // Nothing over the limit: nothing is tried.
    expect(c.trim(() => expect.unreachable())).toBe(0);
  });

  it("keeps what the caller says must stay, tries it again after the others, and drops what a key takes with it", () => {
    const c = new InodeCache<string>(4);
    for (const k of ["pinned", "parent", "child", "other"]) c.add(k, 2);
    const tried: string[] = [];
    const gone = c.trim((k) => {
      tried.push(k);
      if (k === "pinned") return undefined;
      // A directory goes with the loaded directory below it.
      return k === "parent" ? ["parent", "child"] : [k];
    });
    // "child" went with "parent" and is not tried by itself; "other" is not needed.
    expect(tried).toEqual(["pinned", "parent"]);
    expect(gone).toBe(2);
    expect(c.size).toBe(4);
    expect(c.over).toBe(false);
    // The key that had to stay counts as used then: "other" is tried before it.
    c.add("new", 2);
    tried.length = 0;
    c.trim((k) => {
      tried.push(k);
      return k === "pinned" ? undefined : [k];
    });
    expect(tried).toEqual(["other"]);
    expect(c.size).toBe(4);
    expect(c.count).toBe(2);
  });

  it("counts a key added again once, with its new weight", () => {
    const c = new InodeCache<string>(100);
    c.add("a", 5);
    c.add("a", 7);
    c.use("missing");
    c.remove("missing");
    expect(c.size).toBe(7);
    expect(c.count).toBe(1);
  });

  it("leaves the most recently used keys alone: a few, and more while they hold little", () => {
    const c = new InodeCache<string>(1);
    for (const k of ["a", "b", "c", "d", "e"]) c.add(k, 10);
    const tried: string[] = [];
    const dropAll = (k: string) => {
      tried.push(k);
      return [k];
    };
    // The newest 2 stay, and those holding 25 entries at most with them: "d" and "e" only.
    c.trim(dropAll, { keys: 2, entries: 25 });
    expect(tried).toEqual(["a", "b", "c"]);
    tried.length = 0;
    for (const k of ["f", "g"]) c.add(k, 10);
    // 30 entries of the newest may stay: "e", "f", "g".
    c.trim(dropAll, { keys: 1, entries: 30 });
    expect(tried).toEqual(["d"]);
    expect(c.count).toBe(3);
  });

  it("does not count keys it had to keep as recently used", () => {
    const c = new InodeCache<string>(1);
    for (const k of ["kept", "a", "b"]) c.add(k, 10);
    const tried: string[] = [];
    const keepOne = (k: string) => {
      tried.push(k);
      return k === "kept" ? undefined : [k];
    };
    // "kept" stays and moves behind "b"; the newest key ("b") is left alone.
    c.trim(keepOne, { keys: 1, entries: 0 });
    expect(tried).toEqual(["kept", "a"]);
    // "b" is still the newest used: "kept", now last in line, does not take its place.
    tried.length = 0;
    c.trim(keepOne, { keys: 1, entries: 0 });
    expect(tried).toEqual(["kept"]);
    expect(c.has("b")).toBe(true);
  });
});
