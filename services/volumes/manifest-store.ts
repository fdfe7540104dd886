import type { Change, Delta, HistoryPage, ManifestEntry, TreePage, VersionPin } from "../../protocol/volume.js";
import type { Overwrite, VolumeLimits } from "./commit.js";

/** A volume's manifest state as of one read. */
export interface VolumeState {
  volume: string;
  workspace: string;
  latest: number;
  /** Oldest version still readable (older ones were garbage-collected). */
  oldest: number;
  inodes: number;
}

/** Who made a version and why; recorded with it and shown by `history`. */
export interface CommitMeta {
  tokenId?: string;
  note?: string;
  now: number;
}

/** A stored block's place: "blob" (the blob store holds its bytes) or "inline" (the manifest store does). */
export type BlockPlace = "blob" | "inline";

/**
 * Everything a volume server keeps besides block bytes: manifests (MVCC rows per path and
 * version), versions with who made them, per-volume state, version pins and the per-workspace
 * block index. Intent-level and engine-neutral: callers never see SQL or rows. Every method that
 * reads a version checks, in the same atomic step as the read, that the version is still retained
 * (VERSION_GONE otherwise), so garbage collection never shows a reader half a version.
 *
 * Engines: `sqlite-manifest-store.ts` (one SQLite file per home, with versioned migrations in
 * `sqlite-schema.ts`). A second engine (e.g. PostgreSQL) is one more file implementing this
 * interface; the commit rules (`commit.ts`) run on any engine through `CommitTxn`.
 */
export interface ManifestStore {
  /** Remembers where this home's blocks live; refuses another place (the index would point at blobs that are not there). */
  pinBlobLocation(location: string): Promise<void>;

  // ---- volumes and versions ----
  /** A volume's state, created at version 0 (empty) on first use. */
  state(volume: string, workspace: string, createdAt: number): Promise<VolumeState>;
  /** `version` if it is still retained (default: the latest); NotFound / VERSION_GONE otherwise. */
  checkVersion(volume: string, version?: number): Promise<number>;
  /** Applies a commit as one atomic step (see commit.ts); returns the new version (the latest when `changes` is empty). */
  commit(volume: string, changes: readonly Change[], limits: VolumeLimits, overwrite: Overwrite, meta: CommitMeta): Promise<number>;
  /**
   * Makes empty volume `target` (state created at version 0) hold `source`'s tree at `version`
   * as its version 1, sharing every block (references are counted, no bytes are copied).
   */
  fork(source: string, version: number, target: string, workspace: string, meta: CommitMeta): Promise<VolumeState>;

  // ---- reads (version default: the latest) ----
  lookup(volume: string, version: number | undefined, path: string): Promise<{ version: number; entry: ManifestEntry | undefined }>;
  tree(volume: string, version: number | undefined, after: string, limit: number): Promise<TreePage>;
  /** Entries directly in `dir`, or (recursive) everything below it, in path order. */
  list(volume: string, version: number | undefined, dir: string, recursive: boolean, after: string, limit: number): Promise<TreePage>;
  /** Every name (entry) of the given hard-link ids in `version`, by link id then path. */
  linked(volume: string, version: number | undefined, linkIds: readonly string[]): Promise<{ version: number; entries: ManifestEntry[] }>;
  /** Live entries strictly below directory `dir` (not the root) in the latest version, in path order. */
  liveSubtree(volume: string, dir: string): Promise<ManifestEntry[]>;
  /** The changes that turn version `from` into `to`: deletes first, then puts, each in path order. */
  delta(volume: string, from: number, to: number | undefined): Promise<Delta>;
  /**
   * The changes that bring `under` (a path, "" for the whole volume) in the latest version back to
   * what it was in `version`: puts of the entries as they were, deletes of what did not exist.
   * Costs what changed since `version`, not what the volume holds.
   */
  revertChanges(volume: string, version: number, under: string): Promise<Change[]>;
  /** Retained versions, newest first, that changed `path` (or anything below it) if given. */
  history(volume: string, opts: { path?: string; before?: number; limit: number; sample: number }): Promise<HistoryPage>;

  // ---- version pins ----
  /** Pins a retained version (default: the latest); checked and stored in one atomic step. */
  pin(volume: string, pinId: string, version: number | undefined, ttlMs: number, now: number): Promise<VersionPin>;
  /** Extends a live pin, and moves it to `version` if given. NotFound once it lapsed. */
  renewPin(volume: string, pinId: string, version: number | undefined, ttlMs: number, now: number): Promise<VersionPin>;
  unpin(volume: string, pinId: string): Promise<void>;
  /** Pins that have not lapsed by `now`, oldest version first. */
  listPins(volume: string, now: number): Promise<Array<{ pinId: string; version: number; expiresAt: number }>>;

  // ---- garbage collection ----
  volumes(): Promise<VolumeState[]>;
  /**
   * Forgets lapsed pins, then moves the volume's oldest retained version up to the oldest of: the
   * first version created at or after `retainSince`, the latest, the oldest live pin. Returns it.
   */
  expireVersions(volume: string, retainSince: number, now: number): Promise<number>;
  /** Drops up to `limit` rows no retained version sees, with their block references; returns how many. */
  dropExpiredRows(volume: string, limit: number): Promise<number>;
  /** Drops up to `limit` rows of a deleted volume; once none are left, its versions, state and pins. Returns rows dropped. */
  purgeRows(volume: string, limit: number): Promise<number>;

  // ---- block index (per workspace) ----
  workspaces(): Promise<string[]>;
  /** The hashes the workspace lacks; the present ones count as touched now. */
  missingBlocks(workspace: string, hashes: readonly string[], now: number): Promise<string[]>;
  /** A block now in the blob store (uploaded or confirmed). */
  recordBlock(workspace: string, hash: string, size: number, now: number): Promise<void>;
  /** Stores small blocks in the index itself, in one atomic step for the lot. */
  storeInline(workspace: string, blocks: ReadonlyArray<{ hash: string; data: Uint8Array }>, now: number): Promise<void>;
  /** A block's bytes if it is stored inline, else undefined (it is in the blob store, or absent). */
  inlineBlock(workspace: string, hash: string): Promise<Buffer | undefined>;
  /** A stored block's size, or undefined if the workspace has no such block. */
  blockSize(workspace: string, hash: string): Promise<number | undefined>;
  /** Blocks no row references and nobody touched since `touchedBefore`. */
  collectableBlocks(workspace: string, touchedBefore: number, limit: number): Promise<string[]>;
  /** Drops still-collectable blocks from the index in one atomic step: where each lived, or undefined if it is not collectable (any more). */
  forgetBlocks(workspace: string, hashes: readonly string[], touchedBefore: number): Promise<Array<BlockPlace | undefined>>;
  blockStats(workspace: string): Promise<{ blocks: number; bytes: number }>;
  /**
   * Over every workspace: blocks and bytes stored; bytes of the referenced ones; and the bytes the
   * references add up to (a block in two file rows counts twice), which over `referencedBytes` is the dedup ratio.
   */
  blockTotals(): Promise<{ blocks: number; bytes: number; referencedBytes: number; logicalBytes: number }>;

  /** Throws unless the store answers (readiness). */
  ping(): Promise<void>;
  close(): void;
}

/** Binary (UTF-8 byte) order, the order paths are kept in. */
export const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
