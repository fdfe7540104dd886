/** Entries of loaded directories a mount keeps in memory unless `SILO_INODE_CACHE` says otherwise. */
export const DEFAULT_INODE_CACHE = 100_000;

/**
 * The loaded directories of a mounted tree, least recently used first, each weighed by the
 * entries it holds in memory: what a mount drops (and reads again when needed) so that its
 * memory follows this limit, not the volume's size (docs/architecture.md, "The inode cache").
 * Pure bookkeeping: whether a directory may go is the caller's to say (`trim`).
 */
export class InodeCache<K> {
  /** Key → entries it holds; insertion order is use order (a Map keeps it, a use re-inserts). */
  private readonly weights = new Map<K, number>();
  private held = 0;
  /** Keys `trim` had to keep and moved to the end: newest by place, not by use (never young). */
  private readonly deferred = new Set<K>();

  constructor(public limit: number) {}

  /** Entries held by the keys cached. */
  get size(): number {
    return this.held;
  }

  /** Keys cached. */
  get count(): number {
    return this.weights.size;
  }

  /** The most entries held at once (status: what a walk's memory came to). */
  peak = 0;

  get over(): boolean {
    return this.held > this.limit;
  }

  has(key: K): boolean {
    return this.weights.has(key);
  }

  /** `key` was loaded with `weight` entries: cached, the most recently used. */
  add(key: K, weight: number): void {
    this.remove(key);
    this.weights.set(key, weight);
    this.held += weight;
    if (this.held > this.peak) this.peak = this.held;
  }

  /** `key` was used: the most recently used, if it is cached. */
  use(key: K): void {
    this.toEnd(key);
    this.deferred.delete(key);
  }

  private toEnd(key: K): void {
    const w = this.weights.get(key);
    if (w === undefined) return;
    this.weights.delete(key);
    this.weights.set(key, w);
  }

  remove(key: K): void {
    const w = this.weights.get(key);
    if (w === undefined) return;
    this.weights.delete(key);
    this.deferred.delete(key);
    this.held -= w;
  }

  /**
   * Drops keys, least recently used first, until at most `limit` entries are held. `drop(key)`
   * returns the keys it let go (a directory and the loaded ones below it), or undefined when
   * `key` must stay for now: it then counts as used, so it is tried again only after every other.
   * The most recently used keys are not tried: the newest `young.keys`, and more of the newest
   * while they hold at most `young.entries` together (what a walk is about to use: dropping it
   * would only read it again). Each key is tried once per call. Returns how many keys went.
   */
  trim(drop: (key: K) => Iterable<K> | undefined, young: { keys: number; entries: number } = { keys: 0, entries: 0 }): number {
    const keys = [...this.weights.keys()];
    const newest = new Set<K>();
    let sum = 0;
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (this.deferred.has(key)) continue;
      sum += this.weights.get(key)!;
      if (newest.size >= young.keys && sum > young.entries) break;
      newest.add(key);
    }
    let gone = 0;
    for (const key of keys) {
      if (!this.over) break;
      if (newest.has(key) || !this.weights.has(key)) continue;
      const dropped = drop(key);
      if (dropped === undefined) {
        this.toEnd(key);
        this.deferred.add(key);
        continue;
      }
      for (const k of dropped) {
        if (this.weights.has(k)) gone++;
        this.remove(k);
      }
    }
    return gone;
  }
}
