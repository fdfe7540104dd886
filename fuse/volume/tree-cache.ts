import { joinPath, parentOf } from "../../protocol/volume.js";
import type { FileContent } from "./file-content.js";
import { InodeCache } from "./inode-cache.js";
import type { DirNode, Namespace, Node } from "./namespace.js";

/** What the kernel holds of the tree: the FUSE file system (fuse-ops.ts) knows. */
export interface KernelRefs {
  /** The number the kernel holds for `node`, if it may still name it. */
  held(node: Node): number | undefined;
  /** Whether `dir` is open for listing (a handle's snapshot names its entries). */
  listing(dir: DirNode): boolean;
  /**
   * Asks the kernel to drop its cached names `names` in `dir` (the directory's own name, which
   * drops everything below it in one notification, or else each of them): FORGETs follow for
   * what nothing else uses. False if the kernel does not know `dir` itself.
   */
  askForget(dir: DirNode, names: readonly string[]): boolean;
}

/** What the mounted volume tells about its local state. */
export interface TreeCacheHost {
  readonly ns: Namespace;
  /** Whether an operation awaits a directory load: it may go on to use what is loaded now (read-ahead does not count). */
  loading(): boolean;
  /** Whether `dir` was read ahead of a walk that has not reached it yet (lazy-load.ts bounds those): it stays. */
  readAhead(dir: DirNode): boolean;
  /** Paths a read of the view version would not give back: changed here, in a commit, committed past the view. */
  pinnedPaths(): Iterable<string>;
  /** Whether a file's bytes are only what its committed entry says (nothing local, open, or held for a commit). */
  pristine(c: FileContent): boolean;
  /** Directory `path` was unloaded: its committed listing goes too. */
  unloaded(path: string): void;
}

/**
 * The most recently used directories never unloaded: a walk's current one (looked up, about to
 * be opened), the few before it; more of the newest while they hold at most a quarter of the
 * limit. Unloading them would only have them read again. (What a walk read ahead stays by
 * `readAhead`, however old.)
 */
const YOUNG_DIRS = 6;

/**
 * Keeps a mount's memory bounded by its inode cache limit, not by what it has read
 * (docs/architecture.md, "The inode cache"): once the loaded directories hold more entries than
 * the limit, the least recently used ones are unloaded (children dropped, `loaded` false: the
 * next operation that needs them reads them again at the view version), with every loaded
 * directory below them. Only what a read gives back may go: a directory stays while anything
 * at or below it is changed, in a commit, committed past the view, open, listed, hard-linked,
 * or named by an inode number the kernel holds (for those it asks the kernel to forget the
 * names, and tries again when the FORGETs come), nor one read ahead of a walk that has not
 * reached it. Unloading runs in a turn of its own, and never while an operation awaits a load,
 * so none that awaited one finds it undone; read-ahead loads do not hold it off.
 */
export class TreeCache {
  readonly cache: InodeCache<DirNode>;
  /** Where each cached directory was loaded (checked before unloading: a rename moves it). */
  private readonly paths = new Map<DirNode, string>();
  /** Directories whose names the kernel was asked to forget, until it forgets one: not walked again meanwhile. */
  private readonly waiting = new WeakSet<DirNode>();
  private scheduled = false;
  /** Set once mounted: nothing is unloaded before (a journal replay holds loaded paths across awaits). */
  refs: KernelRefs | undefined;
  /** Directories unloaded since the mount started (status). */
  unloadedDirs = 0;
  /**
   * A full garbage collection (the daemon's `gc`, when node exposes it), run once a cache's
   * worth of entries was unloaded since the last: V8 would otherwise let the dropped nodes pile
   * up to a multiple of what is live before collecting (a `find` over 1,000,000 files left a
   * 100,000-entry cache at 375 MiB of RSS, 172 MiB of heap of which 60 MiB live).
   */
  collect: (() => void) | undefined;
  private unloadedEntries = 0;

  constructor(
    private readonly host: TreeCacheHost,
    limit: number,
  ) {
    this.cache = new InodeCache(limit);
  }

  /** Directory `dir` at `path` was loaded with `entries` entries. The root always stays. */
  loaded(path: string, dir: DirNode, entries: number): void {
    if (path === "") return;
    this.paths.set(dir, path);
    this.cache.add(dir, entries);
    this.soon();
  }

  /** `dir`'s entries were used (a lookup, a listing). */
  used(dir: DirNode): void {
    this.cache.use(dir);
  }

  /** The kernel forgot a name in `dir`: it may go now. */
  forgotten(dir: DirNode | undefined): void {
    if (dir) this.waiting.delete(dir);
    this.soon();
  }

  /** Trims in a turn of its own, if over the limit (after a load, a FORGET, the end of the loads under way). */
  soon(): void {
    if (this.scheduled || !this.cache.over || !this.refs) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.trim();
    });
  }

  private trim(): void {
    // An operation awaiting a load calls soon() again when the last one goes on.
    if (!this.cache.over || this.host.loading()) return;
    const pinned = new Set<string>();
    for (const p of this.host.pinnedPaths()) {
      for (let q = p; !pinned.has(q); q = parentOf(q)) {
        pinned.add(q);
        if (q === "") break;
      }
    }
    const before = this.cache.size;
    this.cache.trim((dir) => this.unload(dir, pinned), { keys: YOUNG_DIRS, entries: Math.floor(this.cache.limit / 4) });
    this.unloadedEntries += before - this.cache.size;
    if (this.collect && this.unloadedEntries >= this.cache.limit) {
      this.unloadedEntries = 0;
      this.collect();
    }
  }

  /** Unloads `dir` and the loaded directories below it; the directories gone, or undefined if it must stay. */
  private unload(dir: DirNode, pinned: ReadonlySet<string>): DirNode[] | undefined {
    const refs = this.refs!;
    const path = this.paths.get(dir);
    // Moved or gone since it was loaded: no longer one this cache can name (it stays as it is).
    if (path === undefined || this.host.ns.lookup(path) !== dir || !dir.loaded) {
      this.paths.delete(dir);
      return [dir];
    }
    if (this.waiting.has(dir) || pinned.has(path) || refs.listing(dir) || this.host.readAhead(dir)) return undefined;
    const dirs: Array<[string, DirNode]> = [[path, dir]];
    const held: string[] = [];
    // A listed name without a node (Children) is only its committed entry: nothing holds it.
    for (const [name, child] of dir.children.made()) {
      const s = this.state(joinPath(path, name), child, pinned, dirs);
      if (s === "keep") return undefined;
      if (s === "held") held.push(name);
    }
    if (held.length > 0) {
      if (refs.askForget(dir, held)) this.waiting.add(dir);
      return undefined;
    }
    // Deepest first, all in this synchronous step.
    for (const [p, d] of dirs.reverse()) {
      d.children.clear();
      d.loaded = false;
      this.host.unloaded(p);
      this.paths.delete(d);
    }
    this.unloadedDirs += dirs.length;
    return dirs.map(([, d]) => d);
  }

  /**
   * Whether `node` (at `path`, below a directory to unload) may go: "keep" if not, "held" if
   * only the kernel's numbers for it or below it stand in the way, else "free". Loaded
   * directories met are added to `dirs`.
   */
  private state(path: string, node: Node, pinned: ReadonlySet<string>, dirs: Array<[string, DirNode]>): "keep" | "held" | "free" {
    let held = this.refs!.held(node) !== undefined;
    if (node.type === "directory") {
      if (node.loaded) {
        if (pinned.has(path) || this.refs!.listing(node) || this.host.readAhead(node)) return "keep";
        dirs.push([path, node]);
        for (const [name, child] of node.children.made()) {
          const s = this.state(joinPath(path, name), child, pinned, dirs);
          if (s === "keep") return "keep";
          if (s === "held") held = true;
        }
      }
    } else if (node.linkId !== undefined || node.nlink !== 1) {
      // Every name of a hard link stays in memory together (lazy-load.ts).
      return "keep";
    } else if (node.type === "file") {
      const c = node.loadedContent;
      if (c && !this.host.pristine(c)) return "keep";
    }
    return held ? "held" : "free";
  }
}
