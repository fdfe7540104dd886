import { VOLUME_LIMITS } from "../protocol/volume.js";
import { invalid } from "./errors.js";
import type { KindDefinition, ObjectRecord, ObjectRegistry } from "./objects/registry.js";

const MAX_INODE_LIMIT = 1_000_000_000;

/** Creation options of every file tree: the inode limit (files + directories + symlinks). */
export function normalizeTreeOptions(options: Record<string, unknown>): Record<string, unknown> {
  const inodeLimit = options.inodeLimit ?? VOLUME_LIMITS.defaultInodeLimit;
  if (typeof inodeLimit !== "number" || !Number.isInteger(inodeLimit) || inodeLimit < 1 || inodeLimit > MAX_INODE_LIMIT) {
    throw invalid(`inodeLimit must be a whole number from 1 to ${MAX_INODE_LIMIT}, got ${JSON.stringify(options.inodeLimit)}`);
  }
  return { inodeLimit };
}

/** How a file-tree kind's object is created: what the registry needs, minus the purge (the tree store's). */
export type FileTreeKindDefinition = Omit<KindDefinition, "purge">;

/**
 * The kinds whose objects are file trees kept by one tree store (the volume machinery: MVCC
 * manifest, content-addressed blocks, GC, pins): volumes and network file systems. A kind
 * registers here instead of importing the store (kinds never import each other); the store
 * serves the trees of every registered kind through its routes, and purges them on delete.
 * What differs between the kinds is what their clients and mounts do on top (commit/reload vs
 * close-to-open), not how the bytes are kept.
 */
export class FileTreeKinds {
  private readonly kinds = new Set<string>();
  private purgeTree: ((record: ObjectRecord) => Promise<void>) | undefined;

  constructor(private readonly registry: ObjectRegistry) {}

  /** Registers a kind whose objects are trees of the store. */
  register(kind: string, def: FileTreeKindDefinition): void {
    this.kinds.add(kind);
    this.registry.registerKind(kind, { ...def, purge: (record) => this.purge(record) });
  }

  /** Called once by the tree store: how a deleted object's tree is dropped. */
  servedBy(purge: (record: ObjectRecord) => Promise<void>): void {
    this.purgeTree = purge;
  }

  /** The file-tree kinds, for the store to accept an id of any of them. */
  get all(): ReadonlySet<string> {
    return this.kinds;
  }

  private async purge(record: ObjectRecord): Promise<void> {
    // Registered kinds without a store would leak data: refuse (the purge is retried at the next start).
    if (!this.purgeTree) throw invalid(`No file-tree store is running to purge ${record.kind} ${record.id}`);
    await this.purgeTree(record);
  }
}
