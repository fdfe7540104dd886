/**
 * Time for everything that expires: TTLs, leases, heartbeats, sweeps. The server takes a Clock
 * so tests can move time forward instead of sleeping; production uses `systemClock`.
 */
export interface ClockTimer {
  /** Stops the timer; calling it again (or after a one-shot fired) does nothing. */
  cancel(): void;
}

export interface TimerOptions {
  /** Let the process exit while only this timer is pending (upkeep timers). */
  unref?: boolean;
}

export interface Clock {
  /** Milliseconds since the epoch, like `Date.now()`. */
  now(): number;
  /** Calls `fn` once, `ms` from now. */
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): ClockTimer;
  /** Calls `fn` every `ms`. */
  setInterval(fn: () => void, ms: number, opts?: TimerOptions): ClockTimer;
}

/** Real time: `Date.now()` and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, opts) {
    const t = setTimeout(fn, ms);
    if (opts?.unref) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms, opts) {
    const t = setInterval(fn, ms);
    if (opts?.unref) t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  /** Repeat period for intervals. */
  every?: number;
  cancelled: boolean;
}

/**
 * A clock that stands still until a test advances it. Timers fire in due order during
 * `advance`, each seeing `now()` equal to its due time; between two timers the event loop turns
 * once, so the async work a timer starts (a sweep's transaction, a waiter's retry) gets to run
 * before the next one fires.
 */
export class TestClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers: Scheduled[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.schedule(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.schedule(fn, ms, Math.max(1, ms));
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance takes a non-negative duration, got ${ms}`);
    const target = this.current + ms;
    await turn();
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      if (next.every !== undefined) next.at += next.every;
      else next.cancelled = true;
      next.fn();
      await turn();
    }
    this.current = target;
    await turn();
  }

  private nextDue(limit: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (let i = this.timers.length - 1; i >= 0; i--) {
      const t = this.timers[i]!;
      if (t.cancelled) {
        this.timers.splice(i, 1);
        continue;
      }
      if (t.at <= limit && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) best = t;
    }
    return best;
  }

  private schedule(fn: () => void, ms: number, every: number | undefined): ClockTimer {
    const t: Scheduled = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, every, cancelled: false };
    this.timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
}

/** One full turn of the event loop (promise jobs and I/O callbacks that are ready). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
