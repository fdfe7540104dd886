/**
 * Encoded `/list` answers of a volume at a version, least recently used dropped first, within a
 * byte budget. A listing at a version never changes (rows are versioned by valid_from/valid_to;
 * a commit, restore or fork writes only rows of a new version), so an entry needs no
 * invalidation on writes: the next mount of the same version is served with no SQLite read
 * and no encoding. What may NOT come from here is decided before a lookup, by the caller: who
 * may read the volume (its registry record, by workspace and environment) and whether the
 * version is still retained (GC). Keys name a volume by its id, never by its name: ids are
 * never reused, names are (delete and create again, or another workspace).
 */
export class ListingCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  /** `maxBytes` 0: nothing is kept. */
  constructor(readonly maxBytes: number) {}

  /** The key of one page: volume id, resolved version (never "latest"), directory, page cursor and size. */
  static key(volumeId: string, version: number, dir: string, recursive: boolean, after: string, limit: number): string {
    // NUL separates the fields: ids and normalised paths never hold one (normalizePath refuses
    // it) and `after`, which may, comes last, so no two tuples share a key.
    return `${volumeId}\0${version}\0${recursive ? "r" : "d"}\0${limit}\0${dir}\0${after}`;
  }

  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Most recently used last: Map keeps insertion order.
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit;
  }

  /**
   * Keeps a copy of `encoded`, unless it alone exceeds an eighth of the budget. A copy: an
   * encoder's output is a view of a larger buffer that a kept view would pin whole, beyond what
   * the budget counts (keeping the view saved no CPU: docs/benchmarks.md).
   */
  set(key: string, encoded: Uint8Array): void {
    const size = sizeOf(key, encoded.length);
    if (size > this.maxBytes / 8) return;
    this.drop(key);
    this.entries.set(key, Buffer.from(encoded));
    this.bytes += size;
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  /** Forgets a volume's pages (a deleted volume: its id is never served again, so this only frees memory). */
  dropVolume(volumeId: string): void {
    const prefix = `${volumeId}\0`;
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.drop(key);
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  private drop(key: string): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.entries.delete(key);
    this.bytes -= sizeOf(key, old.length);
  }
}

/** An entry's footprint: the bytes, the key (UTF-16) and ~100 bytes of map slot and Buffer object. */
function sizeOf(key: string, length: number): number {
  return length + 2 * key.length + 100;
}
