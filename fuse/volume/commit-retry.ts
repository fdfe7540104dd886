import { ConnectionError, SiloError, UnavailableError } from "../../protocol/errors.js";

/**
 * Whether a failed commit may succeed when simply tried again: the server is restarting or
 * unreachable (connection refused or reset) or answered 5xx. Refusals (400, 403, 507 no space)
 * are not: trying again changes nothing.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof ConnectionError || err instanceof UnavailableError) return true;
  if (err instanceof SiloError) return err.status >= 500 && err.code !== "NO_SPACE" && err.status !== 507;
  // Errors the transport did not wrap (fetch failures, socket errors).
  return true;
}

export interface RetryOptions {
  /** Give up once this much time has passed (the last error is thrown). */
  forMs: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  onRetry?: (err: Error, delayMs: number) => void;
}

/** Runs `fn`, retrying transient failures with exponential backoff for up to `forMs`. */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + opts.forMs;
  let delay = opts.firstDelayMs ?? 250;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || now() + delay > deadline) throw err;
      opts.onRetry?.(err as Error, delay);
      await sleep(delay);
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 5_000);
    }
  }
}
