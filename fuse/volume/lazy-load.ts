import { NotFoundError } from "../../protocol/errors.js";
import { baseName, joinPath, parentOf } from "../../protocol/volume.js";
import { Listing, ListingReader } from "./listing.js";
import type { DirNode, Namespace, Node } from "./namespace.js";
import type { VolumeRemote } from "./remote.js";

/** Entries per list request of a directory load. */
const LIST_PAGE = 10_000;
/**
 * Directories a recursive walk has read ahead of it at most (loaded or loading, not opened
 * yet): the server lists them while the kernel and the walker work on the current one, so a
 * `find` does not wait for one listing round trip per directory.
 */
const READ_AHEAD_DIRS = 16;
/**
 * The entries of the directories read ahead and not reached yet, at most this share of the
 * inode cache limit: they are kept from trimming until the walk reaches them (tree-cache.ts),
 * so this bounds what read-ahead adds to a mount's memory (besides the listings on their way).
 */
const READ_AHEAD_CACHE_SHARE = 1 / 4;
/**
 * Directory listings read ahead at once: enough to keep the server busy while the walk waits
 * for none of them; more would only queue there.
 */
const READ_AHEAD_FETCHES = 4;

/** An `ahead` directory whose read-ahead is under way. */
const LOADING = -1;

/** What a load reads and fills: the mount's tree at its view version. */
export interface LoadTarget {
  readonly ns: Namespace;
  readonly remote: VolumeRemote;
  readonly viewVersion: number;
  /** Records a loaded directory's entries as committed (what a commit compares a changed path with); keeps `listing`. */
  committedDir(dir: string, listing: Listing): void;
  /** Entries the inode cache keeps loaded (tree-cache.ts): what bounds read-ahead. */
  inodeCacheLimit(): number;
}

/** Entries of directories read at one version, by directory path. */
type Listings = Map<string, Listing>;

const depth = (path: string): number => (path === "" ? 0 : path.split("/").length);

/**
 * Loads directories of a mounted tree on demand (docs/architecture.md, "Mounts"): what an
 * operation needs is read at the view version and applied in one synchronous step, together
 * with the directories of every other name of each hard link it meets.
 */
export class DirLoader {
  /** Loads under way, by the directory path asked for: concurrent needs share one. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Directories loaded since the mount started (status). */
  loadedDirs = 0;
  /** Of those, directories read again after they were unloaded (status). */
  rereadDirs = 0;
  /** Directory loads a walk's read-ahead started (status). */
  private readAheadDirs = 0;
  private readonly everLoaded = new WeakSet<DirNode>();
  /** Directories opened for listing: opening a subdirectory of one is a recursive walk. */
  private readonly listed = new WeakSet<DirNode>();
  /**
   * Directories read ahead and not opened yet (what a walk has ahead of it), oldest first, with
   * the entries their read-ahead loaded (LOADING until then): kept from trimming while here
   * (`isAhead`).
   */
  private readonly ahead = new Map<DirNode, number>();
  /** The entries of `ahead`. */
  private aheadEntries = 0;
  /** Read-ahead loads under way. */
  private fetching = 0;
  /** The directories the last walk to open one reaches next, in its order: what read-ahead picks from. */
  private next: Array<[string, DirNode]> = [];
  /** Per directory, its subdirectories' names in listing order when first needed (a walk's order; stale is harmless: it only picks what to read ahead). */
  private readonly subdirOrder = new WeakMap<DirNode, { names: string[]; at: Map<string, number> }>();

  /**
   * Operations awaiting loads: while one waits nothing is unloaded (tree-cache.ts), so what it
   * loaded, and the directories on the way, are there when it goes on. Read-ahead is not
   * counted: no operation waits on it, and it must not hold trimming off.
   */
  loading = 0;
  /** Called when the last operation awaiting a load goes on. */
  onIdle: (() => void) | undefined;

  constructor(private readonly t: LoadTarget) {}

  /** Loads `dir` (a directory path, "" the root) and every unloaded directory on the way to it. */
  ensure(dir: string): Promise<void> {
    if (this.isLoaded(dir)) return Promise.resolve();
    return this.awaited(async () => {
      await this.shared(dir);
      // A read-ahead's load that began before this wait may have met a directory on the way
      // unloaded meanwhile, and left `dir` unloaded: once more, now that nothing is unloaded.
      if (!this.isLoaded(dir)) await this.shared(dir);
    });
  }

  /** Loads directories `dirs` (the parents of a link's names, say) and every one on their way, in one step. */
  async ensureAll(dirs: Iterable<string>): Promise<void> {
    const todo = [...new Set(dirs)].filter((d) => !this.isLoaded(d));
    if (todo.length) await this.awaited(() => this.load(todo));
  }

  /** Read-ahead (status): loads started, under way, directories ahead of a walk and their entries. */
  readAheadStatus(): { dirs: number; loading: number; ahead: number; aheadEntries: number } {
    return { dirs: this.readAheadDirs, loading: this.fetching, ahead: this.ahead.size, aheadEntries: this.aheadEntries };
  }

  /** Whether `dir` was read ahead of a walk that has not reached it yet (trimming keeps it). */
  isAhead(dir: DirNode): boolean {
    return this.ahead.has(dir);
  }

  /** Runs `load`, an operation's wait for loads, with trimming held off (`loading`). */
  private async awaited(load: () => Promise<void>): Promise<void> {
    this.loading++;
    try {
      await load();
    } finally {
      if (--this.loading === 0) this.onIdle?.();
    }
  }

  /** The load of `dir` under way, or a new one. */
  private shared(dir: string): Promise<void> {
    let p = this.inflight.get(dir);
    if (!p) {
      p = this.load([dir]).finally(() => this.inflight.delete(dir));
      this.inflight.set(dir, p);
    }
    return p;
  }

  /** Loads every directory at or below `path` (a rename moves all of them). */
  async ensureTree(path: string): Promise<void> {
    await this.ensure(path);
    for (;;) {
      const unloaded: string[] = [];
      collectUnloaded(path, this.t.ns.lookup(path), unloaded);
      if (unloaded.length === 0) return;
      // Each round loads a level (and what links bring); a round that loads nothing ends it.
      const before = this.loadedDirs;
      await this.ensureAll(unloaded);
      if (this.loadedDirs === before) return;
    }
  }

  /**
   * Directory `dir` (at `path`, loaded) is opened for listing, from its parent `parent`: when
   * the parent was listed too, a walk goes on below and beside it, and the next unloaded
   * directories it will reach (`dir`'s subdirectories, then its later siblings) are read ahead,
   * at most READ_AHEAD_DIRS ahead of it and a share of the inode cache in entries. A read-ahead
   * that fails leaves its directory unloaded: the walk's own load of it tries again (and reports
   * the error).
   */
  opened(path: string, dir: DirNode, parent: DirNode | undefined): void {
    this.listed.add(dir);
    this.unmark(dir);
    if (!parent || parent === dir || !this.listed.has(parent)) return;
    const next: Array<[string, DirNode]> = [];
    const add = (p: string, node: Node | undefined): boolean => {
      if (node?.type === "directory") next.push([p, node]);
      return next.length < READ_AHEAD_DIRS;
    };
    let more = true;
    for (const name of this.subdirsOf(dir, undefined)) if (!(more = add(joinPath(path, name), dir.children.get(name)))) break;
    const up = parentOf(path);
    if (more) for (const name of this.subdirsOf(parent, baseName(path))) if (!add(joinPath(up, name), parent.children.get(name))) break;
    this.next = next;
    this.readAhead();
  }

  /**
   * Marks the next directories of the last walk as ahead of it, loading those not loaded yet,
   * while the read-ahead bounds allow (loaded ones too: they are kept until the walk gets there).
   */
  private readAhead(): void {
    const limit = this.t.inodeCacheLimit() * READ_AHEAD_CACHE_SHARE;
    const next = new Set(this.next.map(([, n]) => n));
    for (const [p, node] of this.next) {
      if (this.fetching >= READ_AHEAD_FETCHES) return;
      if (this.ahead.has(node) || this.inflight.has(p)) continue;
      // Marks of an earlier walk (or an earlier part of this one) give way, oldest first: they
      // are trimmed like any other directory from now on.
      while (this.ahead.size >= READ_AHEAD_DIRS || this.aheadEntries >= limit) {
        const old = [...this.ahead.keys()].find((d) => !next.has(d));
        if (old === undefined) return;
        this.unmark(old);
      }
      if (node.loaded) {
        this.ahead.set(node, node.children.size);
        this.aheadEntries += node.children.size;
        continue;
      }
      this.ahead.set(node, LOADING);
      this.fetching++;
      this.readAheadDirs++;
      this.shared(p)
        .catch(() => {})
        .finally(() => {
          this.fetching--;
          // Failed, or found loaded by another load (or unloadable): nothing of its own to keep.
          if (this.ahead.get(node) === LOADING) this.unmark(node);
          this.readAhead();
        });
    }
  }

  /** `dir` is no longer ahead of a walk: trimmed like any other directory. */
  private unmark(dir: DirNode): void {
    const entries = this.ahead.get(dir);
    if (entries === undefined) return;
    this.ahead.delete(dir);
    if (entries !== LOADING) this.aheadEntries -= entries;
  }

  /** Names of `dir`'s subdirectories in listing order, those after `after` if given. */
  private subdirsOf(dir: DirNode, after: string | undefined): string[] {
    let order = this.subdirOrder.get(dir);
    if (!order) {
      const names: string[] = [];
      for (const [name, node] of dir.children.made()) if (node.type === "directory") names.push(name);
      order = { names, at: new Map(names.map((n, i) => [n, i])) };
      this.subdirOrder.set(dir, order);
    }
    const i = after === undefined ? -1 : order.at.get(after);
    return i === undefined ? [] : order.names.slice(i + 1, i + 1 + READ_AHEAD_DIRS);
  }

  /** Whether there is nothing to load for `dir`: it and every directory on the way are loaded, or it is not there. */
  private isLoaded(dir: string): boolean {
    let node: Node | undefined = this.t.ns.root;
    for (const name of dir === "" ? [] : dir.split("/")) {
      if (node.type !== "directory") return true;
      if (!node.loaded) return false;
      node = node.children.get(name);
      if (!node) return true;
    }
    return node.type !== "directory" || node.loaded;
  }

  private async load(dirs: string[]): Promise<void> {
    for (;;) {
      const version = this.t.viewVersion;
      const listings: Listings = new Map();
      const seenLinks = new Set<string>();
      let todo = dirs;
      while (todo.length > 0) {
        const linkIds = new Set<string>();
        for (const dir of todo) await this.gather(dir, version, listings, linkIds);
        const fresh = [...linkIds].filter((id) => !seenLinks.has(id));
        for (const id of fresh) seenLinks.add(id);
        todo = fresh.length ? (await this.t.remote.links(version, fresh)).map((e) => parentOf(e.path)) : [];
      }
      // The view moved meanwhile (a reload or commit): what was read may be stale, read again.
      if (version !== this.t.viewVersion) continue;
      this.apply(listings);
      return;
    }
  }

  /**
   * Reads the entries of every unloaded directory on the way from the root to `dir` at
   * `version` (below an unloaded directory, the tree is the server's), noting the link ids met.
   */
  private async gather(dir: string, version: number, listings: Listings, linkIds: Set<string>): Promise<void> {
    const names = dir === "" ? [] : dir.split("/");
    let local: Node | undefined = this.t.ns.root;
    let path = "";
    for (let i = 0; ; i++) {
      if (local !== undefined) {
        if (local.type !== "directory") return;
        if (!local.loaded) local = undefined;
      }
      let listing = local === undefined ? listings.get(path) : undefined;
      if (local === undefined && !listing) {
        listing = await this.list(path, version);
        listings.set(path, listing);
        for (let k = 0; k < listing.size; k++) if (listing.linkedAt(k)) linkIds.add(listing.entryAt(k).linkId!);
      }
      if (i === names.length) return;
      const name = names[i]!;
      if (local !== undefined) {
        local = local.children.get(name);
        if (!local) return;
      } else {
        const k = listing!.indexOf(name);
        if (k < 0 || listing!.typeAt(k) !== "directory") return;
      }
      path = path ? `${path}/${name}` : name;
    }
  }

  /** A directory's entries at `version`; none if it is gone there (a path kept by a local change). */
  private async list(dir: string, version: number): Promise<Listing> {
    const reader = new ListingReader(dir);
    let after: string | undefined;
    try {
      do after = reader.add(keepable(await this.t.remote.listBytes(version, dir, { after, limit: LIST_PAGE })));
      while (after);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      return Listing.empty;
    }
    return reader.listing();
  }

  /** Fills the read directories, parents first, in one synchronous step. */
  private apply(listings: Listings): void {
    const ns = this.t.ns;
    for (const dir of [...listings.keys()].sort((a, b) => depth(a) - depth(b))) {
      const node = ns.lookup(dir);
      if (node?.type !== "directory" || node.loaded || !ns.reachable(dir)) continue;
      const listing = listings.get(dir)!;
      if (this.ahead.get(node) === LOADING) {
        this.ahead.set(node, listing.size);
        this.aheadEntries += listing.size;
      }
      ns.loadChildren(node, listing);
      this.t.committedDir(dir, listing);
      this.loadedDirs++;
      if (this.everLoaded.has(node)) this.rereadDirs++;
      else this.everLoaded.add(node);
    }
  }
}

/**
 * `page` in memory of its own: a small body may be a slice of Node's shared pool, whose whole
 * 8 KiB slab a kept slice would hold.
 */
function keepable(page: Buffer): Buffer {
  if (page.byteLength === page.buffer.byteLength) return page;
  const own = Buffer.allocUnsafeSlow(page.length);
  page.copy(own);
  return own;
}

/** The unloaded directories at or below `node` (at `path`). */
function collectUnloaded(path: string, node: Node | undefined, into: string[]): void {
  if (node?.type !== "directory") return;
  if (!node.loaded) {
    into.push(path);
    return;
  }
  for (const [name, child] of node.children.made()) collectUnloaded(path ? `${path}/${name}` : name, child, into);
}
