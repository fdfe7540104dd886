/**
 * Runs `fn` on every item, at most `limit` at a time, stopping new ones after a failure; settles
 * only when none is running any more (so the caller may close what they use), then throws the
 * first failure.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  for (const s of settled) if (s.status === "rejected") throw s.reason;
}
