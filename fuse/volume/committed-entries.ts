import { baseName, type ManifestEntry, parentOf } from "../../protocol/volume.js";
import type { Listing } from "./listing.js";

/**
 * The committed entries a mount last saw, by path (what a commit compares a changed path
 * with), kept per directory: a directory's load hands over its listing whole (listing.ts, the
 * server's bytes), so a walk that reads 100,000 entries adds 100 map entries here instead of
 * 100,000, and no object per entry until a commit asks for one.
 */
export class CommittedEntries {
  /** Directory path → its entries by name: a load's listing (immutable) until the first change copies it to a map. */
  private readonly dirs = new Map<string, Map<string, ManifestEntry> | Listing>();

  get(path: string): ManifestEntry | undefined {
    return this.dirs.get(parentOf(path))?.get(baseName(path));
  }

  set(entry: ManifestEntry): void {
    this.own(parentOf(entry.path)).set(baseName(entry.path), entry);
  }

  /** Directory `dir`'s map, ours to change (a listing is decoded into one first). */
  private own(dir: string): Map<string, ManifestEntry> {
    const names = this.dirs.get(dir);
    if (names instanceof Map) return names;
    const own = new Map(names?.entries());
    this.dirs.set(dir, own);
    return own;
  }

  /** The entries of directory `dir` as a load read them; `listing` is kept, not copied. */
  setDir(dir: string, listing: Listing): void {
    if (!this.dirs.has(dir)) {
      this.dirs.set(dir, listing);
      return;
    }
    const names = this.own(dir);
    for (const [name, e] of listing.entries()) names.set(name, e);
  }

  /** Forgets the entries of directory `dir` (unloaded: a later load reads them again). */
  dropDir(dir: string): void {
    this.dirs.delete(dir);
  }

  /** Drops `path` and, if it was a directory, everything below it. */
  delete(path: string): void {
    const entry = this.get(path);
    if (entry) this.own(parentOf(path)).delete(baseName(path));
    if (entry?.type !== "directory") return;
    const prefix = `${path}/`;
    for (const dir of this.dirs.keys()) if (dir === path || dir.startsWith(prefix)) this.dirs.delete(dir);
  }
}
