import { ConnectionError, UnavailableError } from "../protocol/errors.js";

/** What became of the confirmations a `settle()` waited for. */
export interface ConfirmOutcome {
  /** Leases the server still held: their items are gone for good. */
  confirmed: number;
  /**
   * Leases that ran out before the confirmation arrived (or it could not be delivered within the
   * lease): their items went back to the head of their partition and are served again.
   */
  late: number;
}

interface Waiting {
  id: string;
  /** When the server gives the items back if no confirmation came (by this machine's clock). */
  deadline: number;
}

/** A retry's pause does not keep a finished process alive: its items then return after the lease. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Confirms receipt of get answers (their leases) to the server. A get resolves as soon as its
 * answer is read; the confirmations of one event-loop turn go out together in one request
 * (64 coalesced gets cost one extra small request, not 64). A confirmation the connection
 * loses is retried until its lease would have run out anyway.
 */
export class Confirmations {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<ConfirmOutcome>>();

  constructor(private readonly send: (leaseIds: string[]) => Promise<{ confirmed: number }>) {}

  add(leaseId: string, leaseMs: number): void {
    this.waiting.push({ id: leaseId, deadline: Date.now() + leaseMs });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends what waits now and resolves once every confirmation so far has an outcome. */
  async settle(): Promise<ConfirmOutcome> {
    this.flush();
    const outcomes = await Promise.all([...this.inFlight]);
    return outcomes.reduce((a, b) => ({ confirmed: a.confirmed + b.confirmed, late: a.late + b.late }), { confirmed: 0, late: 0 });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.waiting.splice(0);
    if (batch.length === 0) return;
    const sent: Promise<ConfirmOutcome> = this.deliver(batch).finally(() => this.inFlight.delete(sent));
    this.inFlight.add(sent);
  }

  private async deliver(batch: Waiting[]): Promise<ConfirmOutcome> {
    const deadline = Math.min(...batch.map((w) => w.deadline));
    for (let delay = 25; ; delay = Math.min(1_000, delay * 2)) {
      try {
        const { confirmed } = await this.send(batch.map((w) => w.id));
        return { confirmed, late: batch.length - confirmed };
      } catch (err) {
        // Only a lost connection is worth another try; the server may be restarting.
        const retry = err instanceof ConnectionError || err instanceof UnavailableError;
        if (!retry || Date.now() + delay >= deadline) return { confirmed: 0, late: batch.length };
        await sleep(delay);
      }
    }
  }
}
