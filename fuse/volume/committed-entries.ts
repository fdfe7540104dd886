import { baseName, type ManifestEntry, parentOf } from "../../protocol/volume.js";

/**
 * The committed entries a mount last saw, by path (what a commit compares a changed path
 * with), kept per directory: a directory's load hands over its listing whole, so a walk that
 * reads 100,000 entries adds 100 map entries here instead of 100,000.
 */
export class CommittedEntries {
  /** Directory path → its entries by name. */
  private readonly dirs = new Map<string, Map<string, ManifestEntry>>();

  get(path: string): ManifestEntry | undefined {
    return this.dirs.get(parentOf(path))?.get(baseName(path));
  }

  set(entry: ManifestEntry): void {
    const dir = parentOf(entry.path);
    let names = this.dirs.get(dir);
    if (!names) {
      names = new Map();
      this.dirs.set(dir, names);
    }
    names.set(baseName(entry.path), entry);
  }

  /** The entries of directory `dir` as a load read them (by name); `listing` is kept, not copied: the caller must not change it. */
  setDir(dir: string, listing: Map<string, ManifestEntry>): void {
    const names = this.dirs.get(dir);
    if (!names) this.dirs.set(dir, listing);
    else for (const [name, e] of listing) names.set(name, e);
  }

  /** Forgets the entries of directory `dir` (unloaded: a later load reads them again). */
  dropDir(dir: string): void {
    this.dirs.delete(dir);
  }

  /** Drops `path` and, if it was a directory, everything below it. */
  delete(path: string): void {
    const entry = this.get(path);
    this.dirs.get(parentOf(path))?.delete(baseName(path));
    if (entry?.type !== "directory") return;
    const prefix = `${path}/`;
    for (const dir of this.dirs.keys()) if (dir === path || dir.startsWith(prefix)) this.dirs.delete(dir);
  }
}
