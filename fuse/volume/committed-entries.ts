import { baseName, type ManifestEntry, parentOf } from "../../protocol/volume.js";

/**
 * The committed entries a mount last saw, by path (what a commit compares a changed path
 * with), kept per directory: a directory's load hands over its listing whole, so a walk that
 * reads 100,000 entries adds 100 map entries here instead of 100,000.
 */
export class CommittedEntries {
  /** Directory path → its entries by name. */
  private readonly dirs = new Map<string, Map<string, ManifestEntry>>();
  /** Listings handed over by loads: the loaded directory's Children read them too, so they are copied before a change. */
  private readonly shared = new WeakSet<Map<string, ManifestEntry>>();

  get(path: string): ManifestEntry | undefined {
    return this.dirs.get(parentOf(path))?.get(baseName(path));
  }

  set(entry: ManifestEntry): void {
    this.own(parentOf(entry.path)).set(baseName(entry.path), entry);
  }

  /** Directory `dir`'s map, ours to change (a shared listing is copied first). */
  private own(dir: string): Map<string, ManifestEntry> {
    let names = this.dirs.get(dir);
    if (!names || this.shared.has(names)) {
      names = new Map(names);
      this.dirs.set(dir, names);
    }
    return names;
  }

  /** The entries of directory `dir` as a load read them (by name); `listing` is kept, not copied, and never changed here: the caller must not change it either. */
  setDir(dir: string, listing: Map<string, ManifestEntry>): void {
    if (!this.dirs.has(dir)) {
      this.dirs.set(dir, listing);
      this.shared.add(listing);
      return;
    }
    const names = this.own(dir);
    for (const [name, e] of listing) names.set(name, e);
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
