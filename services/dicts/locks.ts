import { type Clock, systemClock } from "../../lib/clock.js";
import { siloError } from "../errors.js";
import { newId } from "../ids.js";
import type { GroupCommit } from "../kv-group-commit.js";
import { type DictDbs, type LeaseRecord, dictRange, fullKey } from "./layout.js";

export interface Lease {
  leaseId: string;
  /** Fencing token: strictly increasing over all locks of one dict, never reused (also across restarts). */
  token: number;
  expiresAt: number;
}

type Grant = { lease: Lease } | { heldUntil: number };

/**
 * Lock leases on dict keys. The state lives in LMDB (so fencing tokens survive restarts); who
 * waits for a lock lives in memory: a waiter sleeps until the lock is released (it is woken) or
 * the current lease runs out (its timer), then tries again. No polling.
 */
export class DictLocks {
  /** id+key (latin1) → wake-ups of callers waiting for that lock, first come first served. */
  private readonly waiters = new Map<string, Array<() => void>>();
  /** Counts releases, so a caller that found a lock held notices a release that came before it queued up. */
  private releases = 0;

  constructor(
    private readonly dbs: DictDbs,
    private readonly commits: GroupCommit,
    /** Time for lease expiry and lock waits (tests pass a TestClock). */
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Takes the lock on `key` for `ttlMs`, waiting up to `waitMs` for the current holder to
   * release it or let it expire. Undefined if it stayed held (or `signal` aborted).
   */
  async acquire(dictId: string, key: Buffer, ttlMs: number, waitMs: number, signal?: AbortSignal): Promise<Lease | undefined> {
    const full = fullKey(dictId, key);
    const deadline = this.clock.now() + waitMs;
    let first = true;
    for (;;) {
      const releasesBefore = this.releases;
      const grant = await this.tryAcquire(dictId, full, ttlMs);
      if ("lease" in grant) {
        // The caller left while the grant was being written: give the lock back at once.
        if (signal?.aborted) {
          await this.release(dictId, key, grant.lease.leaseId);
          return undefined;
        }
        return grant.lease;
      }
      const now = this.clock.now();
      if (now >= deadline || signal?.aborted) return undefined;
      if (this.releases !== releasesBefore) continue;
      await this.waitForTurn(full.toString("latin1"), Math.min(deadline, grant.heldUntil) - now, !first, signal);
      first = false;
    }
  }

  private async tryAcquire(dictId: string, full: Buffer, ttlMs: number): Promise<Grant> {
    // A token must be on disk before anyone acts on it, or a crash could hand it out twice.
    return this.commits.run((): Grant => {
      const now = this.clock.now();
      const held = this.dbs.locks.get(full);
      if (held && held.expiresAt > now) return { heldUntil: held.expiresAt };
      const token = (this.dbs.fencing.get(dictId) ?? 0) + 1;
      const lease: LeaseRecord = { leaseId: newId("ls"), token, expiresAt: now + ttlMs };
      this.dbs.fencing.put(dictId, token);
      this.dbs.locks.put(full, lease);
      return { lease };
    });
  }

  /** Callers waiting for a lock now (open long-polls, for metrics). */
  waiting(): number {
    let n = 0;
    for (const queue of this.waiters.values()) n += queue.length;
    return n;
  }

  /** Sleeps until woken by a release, `ms` passes, or `signal` aborts. A woken waiter that lost the race goes back to the front. */
  private waitForTurn(lockKey: string, ms: number, front: boolean, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const queue = this.waiters.get(lockKey) ?? [];
      this.waiters.set(lockKey, queue);
      const done = () => {
        timer.cancel();
        signal?.removeEventListener("abort", done);
        const i = queue.indexOf(done);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0 && this.waiters.get(lockKey) === queue) this.waiters.delete(lockKey);
        resolve();
      };
      const timer = this.clock.setTimeout(done, Math.max(0, ms));
      signal?.addEventListener("abort", done, { once: true });
      if (front) queue.unshift(done);
      else queue.push(done);
    });
  }

  /** Extends a lease the caller still holds; ConflictError if it expired and was lost. */
  async renew(dictId: string, key: Buffer, leaseId: string, ttlMs: number): Promise<Lease> {
    const full = fullKey(dictId, key);
    const lease = await this.commits.run(() => {
      const held = this.dbs.locks.get(full);
      const now = this.clock.now();
      if (!held || held.leaseId !== leaseId || held.expiresAt <= now) return undefined;
      const renewed = { ...held, expiresAt: now + ttlMs };
      this.dbs.locks.put(full, renewed);
      return renewed;
    });
    if (!lease) throw siloError("CONFLICT", "The lock lease expired or was taken over; it is no longer held");
    return lease;
  }

  /** Gives a lock back and wakes the next waiter. False if the lease was no longer held. */
  async release(dictId: string, key: Buffer, leaseId: string): Promise<boolean> {
    const full = fullKey(dictId, key);
    const released = await this.commits.run(() => {
      const held = this.dbs.locks.get(full);
      if (!held || held.leaseId !== leaseId) return false;
      this.dbs.locks.remove(full);
      return true;
    }, { freesSpace: true });
    if (released) {
      this.releases++;
      this.waiters.get(full.toString("latin1"))?.[0]?.();
    }
    return released;
  }

  /** Drops every lock of a deleted dict; its fencing counter goes too (its id is never reused). */
  async purge(dictId: string): Promise<void> {
    await this.commits.run(() => {
      for (const key of [...this.dbs.locks.getKeys(dictRange(dictId))]) this.dbs.locks.remove(key);
      this.dbs.fencing.remove(dictId);
    }, { freesSpace: true });
  }
}
