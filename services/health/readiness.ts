import { statfs } from "node:fs/promises";

/** One thing the server needs to serve requests; throws (or rejects) when it is not there. */
export type ReadinessCheck = () => void | Promise<void>;

export interface CheckResult {
  name: string;
  ok: boolean;
  /** Why it failed, or a reading worth seeing (free bytes). */
  detail?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: CheckResult[];
}

/**
 * What `/readyz` asks: every store answers, the home's file system has room, and the server
 * is not shutting down (a load balancer stops sending before the listener closes).
 */
export class Readiness {
  private readonly checks: Array<{ name: string; check: ReadinessCheck }> = [];
  private closing = false;

  constructor(
    private readonly home: string,
    private readonly minFreeBytes: number,
  ) {}

  add(name: string, check: ReadinessCheck): void {
    this.checks.push({ name, check });
  }

  /** From now on the server answers not ready. */
  markClosing(): void {
    this.closing = true;
  }

  async report(): Promise<ReadinessReport> {
    const results: CheckResult[] = [{ name: "serving", ok: !this.closing, ...(this.closing ? { detail: "shutting down" } : {}) }];
    results.push(await this.disk());
    for (const { name, check } of this.checks) {
      try {
        await check();
        results.push({ name, ok: true });
      } catch (err) {
        results.push({ name, ok: false, detail: err instanceof Error ? err.message : String(err) });
      }
    }
    return { ready: results.every((r) => r.ok), checks: results };
  }

  private async disk(): Promise<CheckResult> {
    try {
      const fs = await statfs(this.home);
      // bavail, not bfree: the blocks an unprivileged writer (the server) may actually use.
      const free = fs.bavail * fs.bsize;
      const detail = `${free} bytes free, at least ${this.minFreeBytes} needed`;
      return { name: "disk", ok: free >= this.minFreeBytes, detail };
    } catch (err) {
      return { name: "disk", ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }
}
