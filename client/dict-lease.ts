import { ConflictError } from "../protocol/errors.js";

/** What the server answers for a lease it granted or renewed. */
export interface LeaseGrant {
  leaseId: string;
  token: number;
  expiresAt: number;
}

/** How a lease talks to its dict (kept apart so the lease knows nothing about transport). */
export interface LeaseCalls {
  renew(leaseId: string, ttlMs: number): Promise<LeaseGrant>;
  release(leaseId: string): Promise<void>;
}

/**
 * A held dict lock. Renewed in the background every third of its TTL while held; `release()`
 * (or the end of an `await using` block) gives it back. Pass `token` to whatever the lock
 * guards: tokens only grow, so a store can refuse writes from an older holder (fencing).
 */
export class DictLease<K = unknown> implements AsyncDisposable {
  /** Fencing token: larger than every token handed out before for this dict. */
  readonly token: number;
  private expiresAt: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly ended = new AbortController();

  constructor(
    readonly key: K,
    private readonly grant: LeaseGrant,
    private readonly ttlMs: number,
    private readonly calls: LeaseCalls,
  ) {
    this.token = grant.token;
    this.expiresAt = grant.expiresAt;
    this.scheduleRenewal(ttlMs / 3);
  }

  /** Aborted when the lease ends: released, or lost because it could not be renewed in time. */
  get signal(): AbortSignal {
    return this.ended.signal;
  }

  /** True until released or lost. */
  get held(): boolean {
    return !this.ended.signal.aborted && Date.now() < this.expiresAt;
  }

  private scheduleRenewal(ms: number): void {
    this.timer = setTimeout(() => void this.renew(), ms);
    // The work the lock guards keeps the process alive, not the renewal.
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const renewed = await this.calls.renew(this.grant.leaseId, this.ttlMs);
      if (this.ended.signal.aborted) return;
      this.expiresAt = renewed.expiresAt;
      this.scheduleRenewal(this.ttlMs / 3);
    } catch (err) {
      if (this.ended.signal.aborted) return;
      const remaining = this.expiresAt - Date.now();
      if (err instanceof ConflictError || remaining <= 0) {
        this.ended.abort(new ConflictError("The lock lease was lost: it expired before it could be renewed", "CONFLICT"));
        return;
      }
      // The server may be briefly unreachable: try again well before the lease runs out.
      this.scheduleRenewal(Math.max(10, Math.min(this.ttlMs / 3, remaining / 3)));
    }
  }

  /** Gives the lock back (a no-op once released or lost). */
  async release(): Promise<void> {
    if (this.ended.signal.aborted) return;
    clearTimeout(this.timer);
    this.ended.abort(new ConflictError("The lock lease was released", "CONFLICT"));
    await this.calls.release(this.grant.leaseId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
