import { type Clock, systemClock } from "../../lib/clock.js";
import type { BucketS3 } from "./bucket-s3.js";
import type { KeyMap } from "./key-map.js";

/** The S3 calls the metadata cache makes. */
export type MetadataSource = Pick<BucketS3, "head" | "hasKeysUnder" | "list">;

export type Entry = { type: "file"; size: number; mtimeMs: number } | { type: "dir"; mtimeMs: number };

interface Listing {
  entries: Map<string, Entry>;
  /** When S3 was last asked; Infinity for a local directory that S3 does not know yet. */
  fetchedAt: number;
}

/** Listings up to one S3 page are re-listed rather than probed per name once they are stale. */
const SMALL_LISTING = 1000;
/**
 * A small listing in use is re-listed in the background once this share of the TTL has passed,
 * so lookups rarely wait for S3. Late in the TTL: a listing of 1,000 keys costs tens of ms of
 * CPU to parse, and re-listing at half the TTL doubled that work (docs/benchmarks.md).
 */
const REFRESH_AHEAD = 0.8;
/**
 * The mount's own uploads and deletes are laid over listings fetched for this long afterwards:
 * a listing that was requested before the change (a refresh in the background), or that an
 * eventually consistent store (Swift) has not updated yet, must not hide or revive the file.
 */
const OWN_CHANGES_MS = 5000;

const parentOf = (path: string) => path.slice(0, Math.max(1, path.lastIndexOf("/")));
const baseName = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** Names S3 keys may hold that cannot be file names. */
const isValidName = (name: string) => name !== "" && name !== "." && name !== ".." && !name.includes("\0");

/**
 * What the mount knows about names: directory listings and single lookups from S3, trusted
 * for `ttlMs`, kept current by the mount's own writes and deletes, plus directories made by
 * mkdir that exist only locally until a file is written under them.
 * Like mountpoint-s3, a directory shadows a file of the same name.
 */
export class Metadata {
  private readonly listings = new Map<string, Listing>();
  private readonly lookups = new Map<string, { entry: Entry | null; at: number }>();
  private readonly localDirs = new Set<string>();
  private readonly inflight = new Map<string, Promise<Entry | null>>();
  private readonly listingsInflight = new Map<string, Promise<Map<string, Entry>>>();
  /** Own changes by directory, then name: the entry (null: deleted) and when. */
  private readonly ownChanges = new Map<string, Map<string, { entry: Entry | null; at: number }>>();

  constructor(
    private readonly s3: MetadataSource,
    private readonly keys: KeyMap,
    private readonly ttlMs: number,
    /** Time for the TTL and the own-changes window (tests pass a TestClock). */
    private readonly clock: Clock = systemClock,
  ) {}

  private fresh(at: number): boolean {
    return this.clock.now() - at < this.ttlMs;
  }

  isLocalDir(path: string): boolean {
    return this.localDirs.has(path);
  }

  async lookup(path: string): Promise<Entry | null> {
    if (path === "/") return { type: "dir", mtimeMs: 0 };
    if (this.localDirs.has(path)) return { type: "dir", mtimeMs: this.clock.now() };
    const listing = this.listings.get(parentOf(path));
    if (listing && this.fresh(listing.fetchedAt)) {
      this.refreshAhead(parentOf(path), listing);
      return listing.entries.get(baseName(path)) ?? null;
    }
    // A small directory listed before is cheaper to list again (one request) than to probe name by name.
    if (listing && listing.entries.size < SMALL_LISTING) return (await this.listShared(parentOf(path))).get(baseName(path)) ?? null;
    const known = this.lookups.get(path);
    if (known && this.fresh(known.at)) return known.entry;
    // Concurrent lookups of one path share one round trip.
    let pending = this.inflight.get(path);
    if (!pending) {
      pending = this.fetchEntry(path).finally(() => this.inflight.delete(path));
      this.inflight.set(path, pending);
    }
    return pending;
  }

  private async fetchEntry(path: string): Promise<Entry | null> {
    if (!isValidName(baseName(path))) return null;
    const [isDir, file] = await Promise.all([this.s3.hasKeysUnder(this.keys.dirPrefix(path)), this.s3.head(this.keys.fileKey(path))]);
    const entry: Entry | null = isDir ? { type: "dir", mtimeMs: this.clock.now() } : file ? { type: "file", ...file } : null;
    this.lookups.set(path, { entry, at: this.clock.now() });
    return entry;
  }

  /** Re-lists a small listing in use before it goes stale (errors surface on the next lookup that must wait). */
  private refreshAhead(dir: string, listing: Listing): void {
    const age = this.clock.now() - listing.fetchedAt;
    if (age < this.ttlMs * REFRESH_AHEAD || listing.entries.size >= SMALL_LISTING || this.listingsInflight.has(dir)) return;
    this.listShared(dir).catch(() => {});
  }

  /** The entries of a directory: a fresh cached listing, or every page of an S3 listing. */
  async list(dir: string): Promise<Map<string, Entry>> {
    const cached = this.listings.get(dir);
    const entries = cached && this.fresh(cached.fetchedAt) ? new Map(cached.entries) : await this.listShared(dir);
    for (const local of this.localDirs) {
      if (parentOf(local) === dir && local !== dir) entries.set(baseName(local), { type: "dir", mtimeMs: this.clock.now() });
    }
    return entries;
  }

  /** Concurrent listings of one directory share one series of requests. */
  private listShared(dir: string): Promise<Map<string, Entry>> {
    let pending = this.listingsInflight.get(dir);
    if (!pending) {
      pending = this.fetchListing(dir).finally(() => this.listingsInflight.delete(dir));
      this.listingsInflight.set(dir, pending);
    }
    return pending.then((entries) => new Map(entries));
  }

  private async fetchListing(dir: string): Promise<Map<string, Entry>> {
    const prefix = this.keys.dirPrefix(dir);
    const entries = new Map<string, Entry>();
    const fetchedAt = this.clock.now();
    for await (const page of this.s3.list(prefix)) {
      for (const obj of page.objects) {
        const name = obj.key.slice(prefix.length);
        if (isValidName(name) && !entries.has(name)) entries.set(name, { type: "file", size: obj.size, mtimeMs: obj.mtimeMs });
      }
      for (const p of page.prefixes) {
        const name = p.slice(prefix.length, -1);
        if (isValidName(name)) entries.set(name, { type: "dir", mtimeMs: fetchedAt });
      }
    }
    const own = this.ownChanges.get(dir);
    for (const [name, change] of own ?? []) {
      if (this.clock.now() - change.at > OWN_CHANGES_MS) own!.delete(name);
      else if (change.entry) entries.set(name, change.entry);
      else if (entries.get(name)?.type === "file") entries.delete(name);
    }
    if (own?.size === 0) this.ownChanges.delete(dir);
    this.listings.set(dir, { entries, fetchedAt });
    return new Map(entries);
  }

  /** mkdir: a directory that lives only here until a file is written under it. */
  addLocalDir(path: string): void {
    this.localDirs.add(path);
    this.listings.set(path, { entries: new Map(), fetchedAt: Number.POSITIVE_INFINITY });
    this.lookups.delete(path);
  }

  hasLocalChildren(path: string): boolean {
    for (const d of this.localDirs) if (parentOf(d) === path) return true;
    return false;
  }

  removeLocalDir(path: string): void {
    this.localDirs.delete(path);
    this.listings.delete(path);
  }

  /** A file this mount just uploaded: visible at once; its local ancestor directories are now real. */
  noteFile(path: string, size: number): void {
    const entry: Entry = { type: "file", size, mtimeMs: this.clock.now() };
    this.lookups.set(path, { entry, at: this.clock.now() });
    this.noteOwnChange(path, entry);
    this.listings.get(parentOf(path))?.entries.set(baseName(path), entry);
    for (let dir = parentOf(path); dir !== "/"; dir = parentOf(dir)) {
      if (this.localDirs.delete(dir)) {
        const listing = this.listings.get(dir);
        if (listing && listing.fetchedAt === Number.POSITIVE_INFINITY) listing.fetchedAt = this.clock.now();
        this.listings.get(parentOf(dir))?.entries.set(baseName(dir), { type: "dir", mtimeMs: this.clock.now() });
        this.lookups.set(dir, { entry: { type: "dir", mtimeMs: this.clock.now() }, at: this.clock.now() });
      }
    }
  }

  noteDeleted(path: string): void {
    this.lookups.set(path, { entry: null, at: this.clock.now() });
    this.noteOwnChange(path, null);
    this.listings.get(parentOf(path))?.entries.delete(baseName(path));
  }

  private noteOwnChange(path: string, entry: Entry | null): void {
    const dir = parentOf(path);
    let own = this.ownChanges.get(dir);
    if (!own) this.ownChanges.set(dir, (own = new Map()));
    // Oldest first (a name noted again moves to the end): drop what has aged out.
    for (const [name, change] of own) {
      if (this.clock.now() - change.at <= OWN_CHANGES_MS) break;
      own.delete(name);
    }
    own.delete(baseName(path));
    own.set(baseName(path), { entry, at: this.clock.now() });
  }

  /** Forget what is known about a path and its directory (after a failed or raced write). */
  invalidate(path: string): void {
    this.lookups.delete(path);
    this.listings.delete(parentOf(path));
    this.ownChanges.get(parentOf(path))?.delete(baseName(path));
  }
}

export { baseName, parentOf };
