import { Gauge, type Registry } from "prom-client";
import type { ObjectRegistry } from "./registry.js";

/** `silo_objects{kind}`: live objects per kind over every workspace, counted when scraped. */
export function objectMetrics(metrics: Registry, registry: ObjectRegistry): void {
  new Gauge({
    name: "silo_objects",
    help: "Live named and ephemeral objects, by kind, over every workspace",
    labelNames: ["kind"] as const,
    registers: [metrics],
    collect() {
      this.reset();
      for (const { kind, objects } of registry.countByKind()) this.set({ kind }, objects);
    },
  });
}
