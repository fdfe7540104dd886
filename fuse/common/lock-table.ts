/**
 * Byte-range locks as Linux keeps them for fcntl(2) (and, whole-file, for flock(2)), held in
 * memory by a file system: per file, per owner, read or write over an inclusive range of exact
 * 64-bit offsets. An owner's own locks never conflict with each other: a new lock replaces the
 * parts of its older ones it covers (splitting them) and merges with touching ones of the same
 * kind. Waiters are served in arrival order whenever a lock goes.
 */

export type LockKind = "read" | "write";

export interface HeldLock {
  owner: bigint;
  kind: LockKind;
  start: bigint;
  /** Inclusive. */
  end: bigint;
  /** The process that took it (what F_GETLK reports). */
  pid: number;
  /** The open file it was taken through (its locks go when that file is released). */
  fh: number;
}

export type LockRequest = Omit<HeldLock, "kind"> & { kind: LockKind | "unlock" };

/** How a wait for a lock ended. */
export type WaitOutcome = "granted" | "interrupted" | "deadlock";

/** How many owners a deadlock search follows (as Linux's MAX_DEADLK_ITERATIONS bounds it). */
const MAX_DEADLOCK_DEPTH = 10;

interface Waiter<K> {
  key: K;
  req: LockRequest;
  done: (outcome: WaitOutcome) => void;
}

const overlaps = (a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }) => a.start <= b.end && b.start <= a.end;

const conflicts = (held: HeldLock, req: LockRequest) =>
  held.owner !== req.owner && req.kind !== "unlock" && overlaps(held, req) && (held.kind === "write" || req.kind === "write");

export class LockTable<K> {
  private readonly held = new Map<K, HeldLock[]>();
  private readonly waiters: Array<Waiter<K>> = [];

  /** The lock (of another owner) that keeps `req` from being granted now, lowest start first. */
  conflicting(key: K, req: LockRequest): HeldLock | undefined {
    let found: HeldLock | undefined;
    for (const l of this.held.get(key) ?? []) if (conflicts(l, req) && (!found || l.start < found.start)) found = l;
    return found;
  }

  /** Takes, changes or drops a lock now; answers the conflicting lock instead (changing nothing) if there is one. */
  trySet(key: K, req: LockRequest): HeldLock | undefined {
    const conflict = this.conflicting(key, req);
    if (conflict) return conflict;
    if (this.apply(key, req)) this.wake(key);
    return undefined;
  }

  /**
   * Takes a lock, waiting while another owner's lock conflicts, until `signal` aborts. A wait
   * that would close a cycle of owners waiting for each other answers "deadlock" at once.
   */
  set(key: K, req: LockRequest, signal?: AbortSignal): Promise<WaitOutcome> {
    if (!this.trySet(key, req)) return Promise.resolve("granted");
    if (signal?.aborted) return Promise.resolve("interrupted");
    if (this.wouldDeadlock(key, req)) return Promise.resolve("deadlock");
    return new Promise((resolve) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve("interrupted");
      };
      const waiter: Waiter<K> = {
        key,
        req,
        done: (outcome) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(outcome);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Drops every lock `owner` holds on `key` (close(2) of any descriptor of the file drops a process's fcntl locks). */
  releaseOwner(key: K, owner: bigint): void {
    this.drop(key, (l) => l.owner === owner);
  }

  /** Drops every lock taken through open file `fh` (its last descriptor closed). */
  releaseFile(key: K, fh: number): void {
    this.drop(key, (l) => l.fh === fh);
  }

  /** The locks held on `key`, in start order (for tests and status). */
  locks(key: K): HeldLock[] {
    return [...(this.held.get(key) ?? [])].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** Requests waiting for a lock. */
  get waiting(): number {
    return this.waiters.length;
  }

  private drop(key: K, which: (l: HeldLock) => boolean): void {
    const list = this.held.get(key);
    if (!list?.some(which)) return;
    this.store(
      key,
      list.filter((l) => !which(l)),
    );
    this.wake(key);
  }

  private store(key: K, list: HeldLock[]): void {
    if (list.length) this.held.set(key, list);
    else this.held.delete(key);
  }

  /**
   * Applies a granted request: the owner's locks over its range are cut away, then the new one
   * is added and merged. True if less is locked than before (waiters may proceed).
   */
  private apply(key: K, req: LockRequest): boolean {
    const list = this.held.get(key) ?? [];
    const out: HeldLock[] = [];
    let freed = false;
    for (const l of list) {
      if (l.owner !== req.owner || !overlaps(l, req)) {
        out.push(l);
        continue;
      }
      // Cut [req.start, req.end] out of l.
      if (l.start < req.start) out.push({ ...l, end: req.start - 1n });
      if (l.end > req.end) out.push({ ...l, start: req.end + 1n });
      if (req.kind === "unlock" || (l.kind === "write" && req.kind === "read")) freed = true;
    }
    if (req.kind !== "unlock") {
      const lock: HeldLock = { owner: req.owner, kind: req.kind, start: req.start, end: req.end, pid: req.pid, fh: req.fh };
      for (let i = out.length - 1; i >= 0; i--) {
        const l = out[i]!;
        const touches = l.end + 1n >= lock.start && lock.end + 1n >= l.start;
        if (l.owner === lock.owner && l.kind === lock.kind && touches) {
          if (l.start < lock.start) lock.start = l.start;
          if (l.end > lock.end) lock.end = l.end;
          out.splice(i, 1);
        }
      }
      out.push(lock);
    }
    this.store(key, out);
    return freed;
  }

  /** Grants, in arrival order, the waiters of `key` nothing conflicts with any more. */
  private wake(key: K): void {
    // A granted waiter may itself free a range (turning its write lock into a read lock): look again.
    for (let again = true; again; ) {
      again = false;
      for (let i = 0; i < this.waiters.length; i++) {
        const w = this.waiters[i]!;
        if (w.key !== key || this.conflicting(key, w.req)) continue;
        this.waiters.splice(i--, 1);
        if (this.apply(key, w.req)) again = true;
        w.done("granted");
      }
    }
  }

  /** Whether `req`'s owner waiting would close a cycle: an owner it waits for waits, through others, for it. */
  private wouldDeadlock(key: K, req: LockRequest): boolean {
    const blockers = (k: K, r: LockRequest) => new Set((this.held.get(k) ?? []).filter((l) => conflicts(l, r)).map((l) => l.owner));
    let frontier = blockers(key, req);
    const seen = new Set<bigint>();
    for (let depth = 0; depth < MAX_DEADLOCK_DEPTH && frontier.size > 0; depth++) {
      if (frontier.has(req.owner)) return true;
      const next = new Set<bigint>();
      for (const owner of frontier) {
        if (seen.has(owner)) continue;
        seen.add(owner);
        for (const w of this.waiters) if (w.req.owner === owner) for (const b of blockers(w.key, w.req)) next.add(b);
      }
      frontier = next;
    }
    return frontier.has(req.owner);
  }
}
