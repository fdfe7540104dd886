import { describe, expect, it } from "vitest";
import type { ManifestEntry } from "../../protocol/volume.js";
import { FileContent } from "./file-content.js";
import { Listing } from "./listing.js";
import { FsError } from "../common/errno.js";
import { DirNode, FileNode, LinkNode, Namespace, entryOf, newStat, nodeFromEntry, relPath, sameEntry } from "./namespace.js";

const file = () => new FileNode(newStat(0o644), new FileContent(0, []));
const dir = () => new DirNode(newStat(0o755));
const errno = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof FsError) return err.code;
    throw err;
  }
  return "ok";
};

function tree(limit = 100): Namespace {
  const ns = new Namespace(limit);
  ns.add("a", dir());
  ns.add("a/b", dir());
  ns.add("a/b/f", file());
  ns.add("top", file());
  ns.dirty.clear();
  return ns;
}

describe("Namespace", () => {
  it("each directory counts its subdirectories through add, remove, rename, exchange and committed entries", () => {
    const ns = tree();
    const subdirs = (p: string) => (ns.lookup(p) as DirNode).children.subdirs;
    const counted = (p: string) => [...(ns.lookup(p) as DirNode).children.values()].filter((n) => n.type === "directory").length;
    const check = () => {
      for (const p of ["", "a", "a/b", "c"]) if (ns.lookup(p)?.type === "directory") expect([p, subdirs(p)]).toEqual([p, counted(p)]);
    };
    check();
    ns.add("c", dir());
    ns.add("a/d", dir());
    check();
    ns.rename("a/d", "c/d");
    check();
    ns.rename("top", "a/top2");
    ns.exchange("a/b", "a/top2");
    check();
    ns.remove("c/d");
    ns.applyDelete("a/top2");
    check();
    ns.applyNode("a/x", dir());
    ns.applyNode("a/x", file());
    check();
    expect(subdirs("")).toBe(2);
  });

  it("a loaded directory makes a listed file's node only when asked for it; local changes and a reload's hide the listed entry", () => {
    const ns = new Namespace(100);
    ns.add("d", dir());
    const d = ns.lookup("d") as DirNode;
    d.loaded = false;
    const at = (path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({ path, type: "file", mode: 0o644, size: 1, mtimeMs: 1_000, blocks: [], ...extra });
    const listing = Listing.of("d", [at("d/f0"), at("d/f1", { size: 0 }), at("d/sub", { type: "directory", size: 0, blocks: undefined }), at("d/f2"), at("d/l", { linkId: "x" }), at("d/f3")]);
    ns.loadChildren(d, listing);
    const made = () => [...d.children.made()].map(([name]) => name);
    // Directories and hard links at load, nothing else; a search among the nodes made makes none.
    expect(made()).toEqual(["sub", "l"]);
    expect([...ns.walkMade()].map(([p]) => p)).toEqual(["d", "d/sub", "d/l"]);
    expect(made()).toEqual(["sub", "l"]);
    expect([d.children.size, d.children.subdirs, d.children.has("f1"), d.children.has("nope")]).toEqual([6, 1, true, false]);
    const listed: string[] = [];
    d.children.list((name, node, type, position) => listed.push(`${name}:${node ? "node" : `entry@${position}`}:${node?.type ?? type}`));
    expect(listed).toEqual(["f0:entry@0:file", "f1:entry@1:file", "sub:node:directory", "f2:entry@3:file", "l:node:file", "f3:entry@5:file"]);
    // A name listed here gets the number reserved for its place in the listing.
    d.children.inoBase = 1000;
    const f2 = d.children.get("f2") as FileNode;
    expect([f2.size, f2.ino, d.children.get("f2") === f2]).toEqual([1, 1003, true]);
    // A reload replaces one listed name never made and removes another; a local add and remove.
    ns.applyPut(at("d/f1", { size: 7 }));
    ns.applyDelete("d/f0");
    ns.add("d/new", file());
    ns.remove("d/f2");
    expect([(d.children.get("f1") as FileNode).size, d.children.get("f0"), d.children.has("f0"), d.children.get("f2"), d.children.size]).toEqual([7, undefined, false, undefined, 5]);
    // f3 is still only listed: the removed listed names must not show through.
    expect(made().sort()).toEqual(["f1", "l", "new", "sub"]);
    expect([...d.children.keys()].sort()).toEqual(["f1", "f3", "l", "new", "sub"]);
    // The listing itself (the committed entries share it) is never changed.
    expect([...listing.entries()].map(([name]) => name)).toEqual(["f0", "f1", "sub", "f2", "l", "f3"]);
    expect(listing.get("f1")!.size).toBe(0);
  });

  it("looks paths up and answers the errno a syscall would get", () => {
    const ns = tree();
    expect(ns.lookup("a/b/f")?.type).toBe("file");
    expect(ns.lookup("a/nope")).toBeUndefined();
    expect(ns.lookup("top/x")).toBeUndefined();
    expect(errno(() => ns.add("a/b/f", file()))).toBe("EEXIST");
    expect(errno(() => ns.add("missing/f", file()))).toBe("ENOENT");
    expect(errno(() => ns.add("top/f", file()))).toBe("ENOTDIR");
    expect(errno(() => ns.remove("a/zzz"))).toBe("ENOENT");
  });

  it("counts inodes against the limit; every name counts, .fuse_hidden ones too (they are users' files now)", () => {
    const ns = tree(5);
    expect(ns.inodes).toBe(4);
    ns.add("x", file());
    expect(errno(() => ns.add("y", file()))).toBe("ENOSPC");
    ns.remove("x");
    ns.add("a/.fuse_hidden0001", file());
    expect(ns.inodes).toBe(5);
    expect(ns.dirty.has("a/.fuse_hidden0001")).toBe(true);
    expect(errno(() => ns.add("y", file()))).toBe("ENOSPC");
    ns.remove("a/.fuse_hidden0001");
    expect(ns.inodes).toBe(4);
  });

  it("rename moves a subtree, marks both sides dirty, and keeps the inode count", () => {
    const ns = tree();
    expect(ns.rename("a", "c")).toBeUndefined();
    expect(ns.lookup("c/b/f")?.type).toBe("file");
    expect(ns.lookup("a")).toBeUndefined();
    expect([...ns.dirty].sort()).toEqual(["a", "a/b", "a/b/f", "c", "c/b", "c/b/f"]);
    expect(ns.inodes).toBe(4);
  });

  it("rename follows rename(2): replaces a file, refuses type changes, non-empty targets and moves into itself", () => {
    const ns = tree();
    ns.add("other", file());
    const replaced = ns.rename("other", "top");
    expect(replaced?.type).toBe("file");
    expect((replaced as FileNode).nlink).toBe(0);
    expect(ns.inodes).toBe(4);
    expect(errno(() => ns.rename("a", "top"))).toBe("ENOTDIR");
    expect(errno(() => ns.rename("top", "a"))).toBe("EISDIR");
    ns.add("d", dir());
    expect(errno(() => ns.rename("d", "a"))).toBe("ENOTEMPTY");
    expect(errno(() => ns.rename("a", "a/b/inside"))).toBe("EINVAL");
    ns.add("empty", dir());
    expect(ns.rename("d", "empty")?.type).toBe("directory");
    expect(ns.inodes).toBe(5);
  });

  it("hard links share a node; removing one name leaves the other", () => {
    const ns = tree();
    const f = ns.lookup("top") as FileNode;
    ns.add("link", f);
    f.nlink++;
    ns.remove("top");
    expect(f.nlink).toBe(1);
    expect(ns.lookup("link")).toBe(f);
  });

  it("applyPut creates missing parents, keeps a directory's children, replaces other nodes; applyDelete drops subtrees", () => {
    const ns = new Namespace(100);
    const put = (e: Partial<ManifestEntry> & Pick<ManifestEntry, "path" | "type">) =>
      ns.applyPut({ mode: 0o644, size: 0, mtimeMs: 5, ...e } as ManifestEntry);
    put({ path: "x/y/z", type: "file", size: 3, blocks: ["h"] });
    expect(ns.inodes).toBe(3);
    put({ path: "x", type: "directory", mode: 0o700 });
    expect((ns.lookup("x") as DirNode).mode).toBe(0o700);
    expect(ns.lookup("x/y/z")?.type).toBe("file");
    // A file where a directory was replaces the whole subtree.
    expect(put({ path: "x/y", type: "file" })?.type).toBe("directory");
    expect(ns.inodes).toBe(2);
    expect(ns.applyDelete("x")?.type).toBe("directory");
    expect(ns.inodes).toBe(0);
    expect(ns.applyDelete("x")).toBeUndefined();
  });

  it("entries round-trip through nodes", () => {
    const entries: ManifestEntry[] = [
      { path: "d", type: "directory", mode: 0o750, size: 0, mtimeMs: 7 },
      { path: "s", type: "symlink", mode: 0o777, size: 6, mtimeMs: 8, target: "../t/x" },
      { path: "f", type: "file", mode: 0o600, size: 5, mtimeMs: 9, blocks: ["ab"] },
    ];
    for (const e of entries) expect(sameEntry(entryOf(e.path, nodeFromEntry(e)), e)).toBe(true);
    expect(sameEntry(entries[2]!, { ...entries[2]!, blocks: ["cd"] })).toBe(false);
    expect(nodeFromEntry(entries[1]!)).toBeInstanceOf(LinkNode);
  });

  it("maps FUSE paths", () => {
    expect(relPath("/a/b/")).toBe("a/b");
    expect(relPath("/")).toBe("");
  });
});
