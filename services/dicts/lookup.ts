import type { Caller } from "../auth/authenticate.js";
import type { ObjectRegistry } from "../objects/registry.js";

const MAX_CACHED = 10_000;

/**
 * Resolves a dict id for a caller, remembering dicts already seen so the hot path skips the
 * registry's SQLite lookup. Confinement is kept (the cached workspace and environment must
 * match the caller's), and a deleted dict is forgotten by its purge, which runs before any
 * later request could find it.
 */
export class DictLookup {
  private readonly known = new Map<string, { workspaceId: string; environment: string }>();

  constructor(private readonly registry: ObjectRegistry) {}

  resolve(caller: Caller, id: string): string {
    const hit = this.known.get(id);
    if (hit && hit.workspaceId === caller.workspaceId && hit.environment === caller.environment) return id;
    const record = this.registry.get(caller, "dict", id);
    if (this.known.size >= MAX_CACHED) this.known.clear();
    this.known.set(record.id, { workspaceId: record.workspaceId, environment: record.environment });
    return record.id;
  }

  forget(id: string): void {
    this.known.delete(id);
  }
}
