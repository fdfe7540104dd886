/**
 * The volume routes' request-size limits and the block hash pattern: the server's schemas
 * (volume-routes.ts) are built from these, and the client sizes its requests by them. Apart from
 * the schemas so that the client and the daemons do not load TypeBox.
 */
/** Request-size limits of the volume routes. */
export const VOLUME_ROUTE_LIMITS = {
  /** Hashes in one "which blocks are missing?" request. */
  missingHashes: 100_000,
  /** Blocks in one batched small-block upload. */
  blocksPerBatch: 10_000,
  /** Hashes in one direct-upload plan or confirmation. */
  directHashes: 1000,
  /** Paths in one small-files read. */
  filesPerRead: 1000,
  /** Entries in one list or tree page, and the page an absent limit gets. */
  maxPage: 10_000,
  defaultPage: 1000,
  /** Hard-link ids in one "every name of these links" request. */
  linkIdsPerRequest: 1000,
  /** Versions in one history page. */
  maxHistoryPage: 1000,
  /** Written ranges in one block composition (a mount's partial block holds at most 256). */
  composeRanges: 1024,
} as const;

/** A block's hash: SHA-256 in lower-case hex. */
export const BLOCK_HASH_PATTERN = "^[0-9a-f]{64}$";
