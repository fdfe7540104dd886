import { Gauge, type Registry } from "prom-client";

const sources = new WeakMap<Registry, Map<string, () => number>>();

/**
 * Adds a kind's count of callers waiting in a blocking call to `silo_long_polls_open{kind}`
 * (one gauge per registry, whichever kind registers first creates it).
 */
export function countLongPolls(registry: Registry, kind: string, count: () => number): void {
  let byKind = sources.get(registry);
  if (!byKind) {
    const kinds = new Map<string, () => number>();
    byKind = kinds;
    sources.set(registry, kinds);
    new Gauge({
      name: "silo_long_polls_open",
      help: "Requests waiting in a blocking call: queue gets, puts waiting for room, peeks waiting for an item; dict lock acquires",
      labelNames: ["kind"] as const,
      registers: [registry],
      collect() {
        for (const [k, c] of kinds) this.set({ kind: k }, c());
      },
    });
  }
  byKind.set(kind, count);
}
