import { describe, expect, it } from "vitest";
import { envelope } from "../../protocol/codec.js";
import type { ManifestEntry, TreePage } from "../../protocol/volume.js";
import { Listing, ListingReader } from "./listing.js";

const page = (entries: ManifestEntry[], next?: string): Buffer => Buffer.from(envelope.pack({ version: 7, entries, ...(next ? { next } : {}) } satisfies TreePage));

/** Entries with every field a manifest entry may carry, in every msgpack width a scan must step over. */
function entries(dir: string): ManifestEntry[] {
  const at = (name: string) => (dir ? `${dir}/${name}` : name);
  return [
    { path: at("a"), type: "file", mode: 0o644, size: 3 * 8 * 2 ** 20, mtimeMs: 1_733_250_000_123, uid: 1000, gid: 70_000, mtimeNs: "1733250000123456789", atimeNs: "1733250000123456789", ctimeNs: "1733250000999999999", blocks: ["ab".repeat(32), 2, "cd".repeat(32)], xattrs: { "user.k": "dmFsdWU=", "user.long": "x".repeat(70_000) } },
    { path: at("sub dir"), type: "directory", mode: 0o2775, size: 0, mtimeMs: -5 },
    { path: at("ünïcødé-名前"), type: "symlink", mode: 0o777, size: 300, mtimeMs: 0, target: "t".repeat(300) },
    { path: at("l1"), type: "file", mode: 0o600, size: 0, mtimeMs: 1, linkId: "link-1", blocks: [] },
    { path: at("p"), type: "fifo", mode: 0o644, size: 0, mtimeMs: 2 },
    { path: at("s"), type: "socket", mode: 0o644, size: 0, mtimeMs: 3 },
    { path: at("c"), type: "char", mode: 0o644, size: 0, mtimeMs: 4, rdev: 0x0501 },
    { path: at("b"), type: "block", mode: 0o644, size: 0, mtimeMs: 5, rdev: 2 ** 40 },
    { path: at("n".repeat(255)), type: "file", mode: 0o644, size: 0, mtimeMs: 6, blocks: [] },
  ];
}

describe("Listing", () => {
  it("gives back every entry exactly as sent, with its name, type and hard-link flag, without decoding the others", () => {
    for (const dir of ["", "x", "x/ÿ/z"]) {
      const sent = entries(dir);
      const l = Listing.fromPages(dir, [page(sent)]);
      expect(l.size).toBe(sent.length);
      for (let i = 0; i < sent.length; i++) {
        const name = sent[i]!.path.slice(dir ? dir.length + 1 : 0);
        expect([l.nameAt(i), l.typeAt(i), l.linkedAt(i), l.indexOf(name)]).toEqual([name, sent[i]!.type, sent[i]!.linkId !== undefined, i]);
        expect(l.entryAt(i)).toEqual(sent[i]);
        expect(l.get(name)).toEqual(sent[i]);
      }
      expect([l.has("nope"), l.get("nope"), l.indexOf("a/")]).toEqual([false, undefined, -1]);
      expect([...l.entries()]).toEqual(sent.map((e) => [e.path.slice(dir ? dir.length + 1 : 0), e]));
    }
  });

  it("reads pages in order, following `next`, into one listing; a file listed as itself or a deeper path is left out", () => {
    const sent = entries("d");
    const reader = new ListingReader("d");
    const pages = [page(sent.slice(0, 4), "d/l1"), page([]), page([{ path: "d", type: "file", mode: 0o644, size: 0, mtimeMs: 0 }, ...sent.slice(4, 6), { path: "d/sub dir/deeper", type: "file", mode: 0o644, size: 0, mtimeMs: 0 }, { path: "dd/x", type: "file", mode: 0o644, size: 0, mtimeMs: 0 }], "d/s"), page(sent.slice(6))];
    expect(pages.map((p) => reader.add(p))).toEqual(["d/l1", undefined, "d/s", undefined]);
    const l = reader.listing();
    expect(l.size).toBe(sent.length);
    expect(sent.map((_, i) => l.entryAt(i))).toEqual(sent);
    expect(l.typeAt(l.indexOf("sub dir"))).toBe("directory");
    // The pages may be reused once read: a listing of several holds its own copy.
    for (const p of pages) p.fill(0);
    expect(l.entryAt(8)).toEqual(sent[8]);
  });

  it("keeps an empty listing empty, and refuses bytes that are no listing", () => {
    expect(Listing.fromPages("d", [page([])]).size).toBe(0);
    expect(Listing.of("d", []).size).toBe(0);
    expect(() => Listing.fromPages("d", [Buffer.from(envelope.pack([1, 2]))])).toThrow();
    expect(() => Listing.fromPages("d", [Buffer.from(envelope.pack({ entries: [{ path: "d/x", type: "dir" }] }))])).toThrow();
    expect(() => Listing.fromPages("d", [page(entries("d")).subarray(0, 200)])).toThrow();
  });
});
