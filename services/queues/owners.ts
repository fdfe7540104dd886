import type { Caller } from "../auth/authenticate.js";
import type { ObjectRegistry } from "../objects/registry.js";

/**
 * Which workspace and environment own each queue id, so the hot path (every put and get)
 * skips a SQLite query. A deletion forgets the id in the same tick that marks the object
 * deleted (the registry calls the kind's purge right away), so a deleted queue is never served.
 */
export class QueueOwners {
  private readonly owners = new Map<string, { workspaceId: string; environment: string }>();

  constructor(private readonly registry: ObjectRegistry) {}

  /** The queue's id if the caller may use it; NotFoundError otherwise (as the registry says). */
  resolve(caller: Caller, id: string): string {
    const known = this.owners.get(id);
    if (known && known.workspaceId === caller.workspaceId && known.environment === caller.environment) return id;
    const record = this.registry.get(caller, "queue", id);
    this.owners.set(id, { workspaceId: record.workspaceId, environment: record.environment });
    return record.id;
  }

  forget(id: string): void {
    this.owners.delete(id);
  }
}
