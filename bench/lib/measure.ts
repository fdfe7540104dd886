/** Runs `concurrency` loops of `op` for `durationMs` (after a short warm-up) and reports rate and latency. */
export async function measure(
  concurrency: number,
  durationMs: number,
  op: (worker: number) => Promise<void>,
): Promise<{ opsPerSec: number; p50Ms: number; p99Ms: number }> {
  const run = async (ms: number, latencies: number[] | undefined) => {
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        while (performance.now() < end) {
          const t = performance.now();
          await op(worker);
          latencies?.push(performance.now() - t);
        }
      }),
    );
  };
  await run(Math.min(500, durationMs / 4), undefined);
  const latencies: number[] = [];
  const start = performance.now();
  await run(durationMs, latencies);
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return { opsPerSec: (latencies.length / elapsed) * 1000, p50Ms: pct(0.5), p99Ms: pct(0.99) };
}
