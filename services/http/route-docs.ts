import { ERROR_STATUS, type ErrorCode } from "../../protocol/errors.js";
import { VOLUME_ROUTE_LIMITS } from "../../protocol/volume-limits.js";

/**
 * The API reference for each route: what `/openapi.json` and the `/docs` UI show. Kept apart from
 * the route schemas (which validate) and merged into the description only (swagger's transform),
 * so documenting a route never changes how it validates or serializes.
 */
export interface RouteDoc {
  /** One line: what the call does. */
  summary: string;
  /** The contract in a few sentences: effects, waits, limits. */
  description: string;
  /** Error codes this route answers besides AUTH (every /v1 route) and INTERNAL. */
  errors: ErrorCode[];
  /** Descriptions of the route's own fields (params, query, body) that COMMON_FIELDS does not cover. */
  fields?: Record<string, string>;
}

/** What each error code means for a caller (the statuses come from protocol/errors.ts). */
export const ERROR_MEANINGS: Record<ErrorCode, string> = {
  NOT_FOUND: "the object, key, path, environment or route does not exist",
  VERSION_GONE: "the volume version was garbage-collected (outside retention and unpinned)",
  ALREADY_EXISTS: "an object with that name already exists",
  INVALID: "malformed request: a bad name, option, path or value",
  AUTH: "missing, unknown, wrong or revoked token",
  FORBIDDEN: "the token lacks the right (e.g. an admin-only call)",
  CONFLICT: "the state changed underneath (a stale base version, a lost lease)",
  TOO_LARGE: "the body or a value exceeds its limit",
  RANGE_NOT_SATISFIABLE: "the Range starts at or past the end (the answer's Content-Range: bytes */SIZE gives the size)",
  QUEUE_EMPTY: "a blocking get timed out with the partition still empty",
  QUEUE_FULL: "the partition (or the queue's partition count) is at its limit",
  VOLUME_BUSY: "the volume is being changed by another commit",
  NO_SPACE: "the server's disk is full; nothing was written",
  UNAVAILABLE: "the server or its object store cannot answer now; retry",
  INTERNAL: "a bug or an unexpected failure on the server",
};

/** Field names that mean the same on every route. */
export const COMMON_FIELDS: Record<string, string> = {
  id: "The object's id (`di-…`, `qu-…`, `vo-…`, `se-…`), as returned by create or lookup",
  kind: "Object kind: `dict`, `queue`, `volume` or `secret`",
  name: "Object name: 1–64 characters of `[A-Za-z0-9._-]`",
  options: "Kind-specific creation options (volumes: `{ inodeLimit }`)",
  partition: "Partition key (1–64 bytes); absent: the default partition",
  timeoutMs: "How long a blocking call may wait, in ms",
  version: "Volume version (absent: the latest)",
  after: "Resume after this cursor (exclusive), from the previous page",
  limit: "Most entries in one page",
  recursive: "Include (or act on) everything below a directory",
  hashes: "Block hashes (SHA-256, 64 hex digits)",
  hash: "Block hash (SHA-256, 64 hex digits)",
  path: "Path inside the volume, `/`-separated, without a leading slash",
  key: "Dict key (msgpack-encoded bytes)",
  leaseId: "The lease id the acquire returned",
  ttlMs: "Lease lifetime in ms (100 ms to 24 h)",
  pinId: "The pin id the pin call returned",
  values: "Secret values: an object of string keys to string values",
  n: "Most items to take or show",
  block: "Wait (up to timeoutMs) instead of failing at once",
};

const OBJ = "/v1/objects/:kind";
const DICT = "/v1/dicts/:id";
const QUEUE = "/v1/queues/:id";
const VOL = "/v1/volumes/:id";

/** Every route, keyed `METHOD url` with the url as registered (`:param`). A test fails on a route missing here. */
export const ROUTE_DOCS: Record<string, RouteDoc> = {
  "GET /v1/whoami": {
    summary: "Who the token is",
    description: "The token's id, workspace, environment and whether it is an admin token.",
    errors: ["NOT_FOUND"],
  },
  "POST /v1/workspaces": {
    summary: "Create a workspace (admin)",
    description: "Creates a tenant and returns an owner token for it, shown once. Needs an admin token.",
    errors: ["INVALID", "FORBIDDEN", "ALREADY_EXISTS"],
    fields: { name: "Workspace name: 1–64 characters of `[A-Za-z0-9._-]`" },
  },
  "POST /v1/tokens": {
    summary: "Create a token",
    description: "Issues a token in the caller's workspace; its secret is returned once (the server keeps only a hash).",
    errors: ["INVALID"],
    fields: { label: "Free text to recognise the token by in listings" },
  },
  "GET /v1/tokens": {
    summary: "List tokens",
    description: "The workspace's tokens with label, creation and revocation times; never their secrets.",
    errors: [],
  },
  "DELETE /v1/tokens/:id": {
    summary: "Revoke a token",
    description: "Every later request with the token gets 401.",
    errors: ["NOT_FOUND"],
    fields: { id: "The token id (`tk-…`)" },
  },
  "POST /v1/environments": {
    summary: "Create an environment",
    description: "A namespace inside the workspace; select it with the `x-silo-environment` header.",
    errors: ["INVALID", "ALREADY_EXISTS"],
    fields: { name: "Environment name: 1–64 characters of `[A-Za-z0-9._-]`" },
  },
  "POST /v1/environments/:name/rename": {
    summary: "Rename an environment",
    description: "Renames the environment and moves its objects with it, in one transaction (`main` cannot be renamed).",
    errors: ["INVALID", "NOT_FOUND", "ALREADY_EXISTS"],
    fields: { name: "The environment's current name", newName: "The new name: 1–64 characters of `[A-Za-z0-9._-]`" },
  },
  "DELETE /v1/environments/:name": {
    summary: "Delete an environment",
    description: "Deletes an empty environment; with `force`, deletes its objects (and their data) too. CONFLICT when it holds objects and `force` is not given.",
    errors: ["INVALID", "NOT_FOUND", "CONFLICT"],
    fields: { name: "The environment's name", force: "Also delete every object in the environment" },
  },
  "GET /v1/environments": {
    summary: "List environments",
    description: "The workspace's environments (`main` always exists).",
    errors: [],
  },
  [`POST ${OBJ}`]: {
    summary: "Create a named object",
    description: "Creates a dict, queue, volume or secret in the caller's environment.",
    errors: ["INVALID", "NOT_FOUND", "ALREADY_EXISTS"],
    fields: { allowExisting: "Return the existing object instead of failing with ALREADY_EXISTS" },
  },
  [`GET ${OBJ}`]: {
    summary: "List objects of a kind",
    description: "Named objects of the kind in the caller's environment, newest first.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: {
      maxObjects: "Most objects to return",
      createdBefore: "Only objects created before this time (ms since the epoch): the cursor for the next page",
    },
  },
  [`POST ${OBJ}/lookup`]: {
    summary: "Look up an object by name",
    description: "Resolves a name to its object, creating it first if `createIfMissing`.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { createIfMissing: "Create the object when no object has that name" },
  },
  [`POST ${OBJ}/rename`]: {
    summary: "Rename an object",
    description: "Gives the object a new name; its id and data stay.",
    errors: ["INVALID", "NOT_FOUND", "ALREADY_EXISTS"],
    fields: { newName: "The new name: 1–64 characters of `[A-Za-z0-9._-]`" },
  },
  [`DELETE ${OBJ}/by-name/:name`]: {
    summary: "Delete an object by name",
    description: "Deletes the object and its data before answering; an interrupted purge resumes at the next start.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { allowMissing: "Succeed when no object has that name" },
  },
  [`POST ${OBJ}/ephemeral`]: {
    summary: "Create an ephemeral object",
    description: "An unnamed object that lives while its creator heartbeats it (every `heartbeatIntervalMs`).",
    errors: ["INVALID", "NOT_FOUND"],
  },
  [`GET ${OBJ}/:id`]: {
    summary: "Get an object by id",
    description: "The object's record: name, kind, environment, creation time, options.",
    errors: ["NOT_FOUND"],
  },
  [`DELETE ${OBJ}/:id`]: {
    summary: "Delete an object by id",
    description: "Deletes the object and its data (also ends an ephemeral object).",
    errors: ["NOT_FOUND"],
  },
  [`POST ${OBJ}/:id/heartbeat`]: {
    summary: "Keep an ephemeral object alive",
    description: "An ephemeral object is deleted when heartbeats stop for longer than the server's ephemeral timeout.",
    errors: ["NOT_FOUND"],
  },
  [`POST ${DICT}/ops`]: {
    summary: "Run dict operations",
    description: "Runs a batch of get, contains, len, put, pop and update in order; each answers `{ok}` or `{error}`. A batch with a write is one durable transaction.",
    errors: ["INVALID", "NOT_FOUND", "TOO_LARGE", "NO_SPACE"],
    fields: { ops: "The operations, in order: `{op, key?, value?, skipIfExists?, entries?}`" },
  },
  [`POST ${DICT}/scan`]: {
    summary: "Page through dict entries",
    description: "One page of entries in key-byte order after `after`; `cursor` is null on the last page.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: {
      values: "Include the values (default true); false lists keys only",
      expiry: "Also answer `expiresAt`: when each entry expires unless read or written before (ms since the epoch)",
    },
  },
  [`POST ${DICT}/clear`]: {
    summary: "Clear a dict",
    description: "Removes every entry.",
    errors: ["NOT_FOUND"],
  },
  [`POST ${DICT}/locks/acquire`]: {
    summary: "Acquire a lock lease",
    description: "Takes the lock on a key, waiting up to `waitMs` (a long-poll); `{acquired:false}` if it stayed held. The lease carries a fencing token.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { waitMs: "How long to wait for the lock, at most 60 s (0: try once)" },
  },
  [`POST ${DICT}/locks/renew`]: {
    summary: "Renew a lock lease",
    description: "Extends a lease still held; CONFLICT once it lapsed or another holder took it.",
    errors: ["INVALID", "NOT_FOUND", "CONFLICT"],
  },
  [`POST ${DICT}/locks/release`]: {
    summary: "Release a lock lease",
    description: "Frees the lock if this lease still holds it (`released: false` otherwise).",
    errors: ["INVALID", "NOT_FOUND"],
  },
  [`POST ${QUEUE}/put`]: {
    summary: "Put items on a queue",
    description: "Appends items to a partition atomically; a full partition makes a blocking put wait for room, else QUEUE_FULL.",
    errors: ["INVALID", "NOT_FOUND", "QUEUE_FULL", "TOO_LARGE", "NO_SPACE"],
    fields: {
      items: "Values to append (msgpack-encoded bytes each), in order",
      partitionTtlMs: "The partition expires this long after its last put (default: the server's)",
    },
  },
  [`POST ${QUEUE}/get`]: {
    summary: "Take items from a queue",
    description: "Removes up to `n` items from the head; a blocking get waits (a long-poll) for an item, then QUEUE_EMPTY.",
    errors: ["INVALID", "NOT_FOUND", "QUEUE_EMPTY"],
  },
  [`POST ${QUEUE}/confirm`]: {
    summary: "Confirm receipt of served items",
    description:
      "Ends the delivery leases of items a get served: confirmed items are gone for good. An unconfirmed lease gives its items back to the head of their partition when it runs out (at-least-once delivery; see docs/queues.md).",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { leases: "Lease ids from get answers" },
  },
  [`POST ${QUEUE}/peek`]: {
    summary: "Look at items without taking them",
    description: "Up to `n` items after seq `after`, with their seqs; waits up to `timeoutMs` for one (iteration).",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { after: "Show items after this seq (from a previous peek)" },
  },
  [`GET ${QUEUE}/len`]: {
    summary: "Count items",
    description: "Items in one partition, or over all partitions with `total`.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { total: "Count the items of every partition" },
  },
  [`POST ${QUEUE}/clear`]: {
    summary: "Clear a queue",
    description: "Drops the items of one partition, or of every partition with `all`.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { all: "Clear every partition" },
  },
  [`GET ${QUEUE}/partitions`]: {
    summary: "List partitions",
    description: "The queue's partitions in key order with their items and expiry time (ms since the epoch); `truncated` when there are more than `limit`.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { limit: "Most partitions to list (default 1000)" },
  },
  [`GET ${QUEUE}/info`]: {
    summary: "Queue facts",
    description: "Items and partitions of the queue.",
    errors: ["NOT_FOUND"],
  },
  [`POST ${VOL}/blocks/missing`]: {
    summary: "Which blocks the server lacks",
    description: "The hashes among `hashes` the volume's workspace does not hold; the present ones count as touched (kept from GC for the grace period).",
    errors: ["INVALID", "NOT_FOUND"],
  },
  [`PUT ${VOL}/blocks/:hash`]: {
    summary: "Upload one block",
    description: "The block's bytes as the body (application/octet-stream, at most 8 MiB); the server checks the hash.",
    errors: ["INVALID", "NOT_FOUND", "TOO_LARGE", "NO_SPACE"],
  },
  [`GET ${VOL}/blocks/:hash`]: {
    summary: "Download one block",
    description:
      "The block's bytes (one `Range: bytes=…` honoured: 206 with Content-Range), or a redirect to a signed object-store URL with an S3 blob backend.",
    errors: ["INVALID", "NOT_FOUND", "RANGE_NOT_SATISFIABLE"],
  },
  "GET /v1/local-blocks": {
    summary: "Where local block reads are offered",
    description:
      "For clients on the server's host: the unix socket that passes a block's blob file (its open descriptor) instead of its bytes, and the serving process's random instance id, which the socket's replies carry (protocol/local-blocks.ts). `putSocket`: the socket for local block writes, to which a `volume put` passes its source file's descriptor instead of uploading its bytes. `{}` when the server offers none (an S3 blob backend, `--no-local-blocks`).",
    errors: [],
  },
  [`POST ${VOL}/blocks`]: {
    summary: "Upload small blocks in one call",
    description: "Many small blocks at once (each checked against its hash); small ones are stored inline in the index.",
    errors: ["INVALID", "NOT_FOUND", "TOO_LARGE", "NO_SPACE"],
    fields: { blocks: "Blocks as `{hash, data}` pairs" },
  },
  [`POST ${VOL}/blocks/compose`]: {
    summary: "Compose a block from a stored base and written ranges",
    description:
      `A new block: the first \`baseLength\` bytes of the stored block \`base\` (one this volume's workspace holds), zeros up to \`length\`, and each range's bytes at its offset over them (ranges sorted, not overlapping, within \`length\`; at most ${VOLUME_ROUTE_LIMITS.composeRanges}). Stored durably before the answer, as an upload; answers its \`hash\` and \`size\`. What a mount's commit uses for a block it rewrote in small pieces, so the base never travels.`,
    errors: ["INVALID", "NOT_FOUND", "TOO_LARGE", "NO_SPACE"],
    fields: {
      base: "Hash of the stored block under the ranges",
      baseLength: "Bytes of the base that count (past them: zeros where no range is)",
      length: "The new block's length (at most 8 MiB)",
      ranges: "`{offset, data}` pairs, sorted by offset, not overlapping",
    },
  },
  [`POST ${VOL}/blocks/direct-uploads`]: {
    summary: "Signed URLs to upload blocks straight to the object store",
    description: "With an S3 blob backend: one signed PUT per hash; confirm the uploads afterwards.",
    errors: ["INVALID", "NOT_FOUND"],
  },
  [`POST ${VOL}/blocks/confirm`]: {
    summary: "Confirm direct block uploads",
    description: "Records blocks uploaded with signed URLs once the object store holds them.",
    errors: ["INVALID", "NOT_FOUND", "TOO_LARGE"],
  },
  [`GET ${VOL}/version`]: {
    summary: "Latest version",
    description: "The volume's latest committed version number.",
    errors: ["NOT_FOUND"],
  },
  [`GET ${VOL}/info`]: {
    summary: "Volume facts",
    description: "Latest and oldest readable version, inode count and limit.",
    errors: ["NOT_FOUND"],
  },
  [`POST ${VOL}/commit`]: {
    summary: "Commit changes as a new version",
    description: "Applies file changes made against `baseVersion` atomically as the next version; blocks must be uploaded first. Answers the new version.",
    errors: ["INVALID", "NOT_FOUND", "CONFLICT", "VOLUME_BUSY", "NO_SPACE"],
    fields: {
      baseVersion: "The version the changes were made against",
      changes:
        "File changes: puts of entries (files with block hashes, directories, symlinks, fifos, sockets, char and block devices; mode, uid, gid, ns times as decimal strings, rdev, linkId for hard links, base64 xattrs) and removals",
      overwrite: "`replace` (default), `files` (keep concurrent changes to other files) or `none` (fail on any conflict)",
    },
  },
  [`GET ${VOL}/delta`]: {
    summary: "What changed between two versions",
    description: "Paths added, changed and removed from `from` to `to` (default: the latest).",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
    fields: { from: "Older version (exclusive)", to: "Newer version (default: the latest)" },
  },
  [`GET ${VOL}/tree`]: {
    summary: "A version's whole tree, paged",
    description: "Every entry of a version with its block hashes (a mount whose version the server no longer keeps diffs against it).",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
  },
  [`POST ${VOL}/links`]: {
    summary: "Every name of some hard links",
    description:
      "The entries of a version (default: the latest) that carry one of the given `linkId`s, by link id then path: what a mount that loads directories on demand reads to keep a hard link's names together. At most 1,000 link ids per request.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
    fields: { linkIds: "Hard-link ids (`linkId` of entries)", version: "The version to read (default: the latest)" },
  },
  [`POST ${VOL}/remove`]: {
    summary: "Remove a file or directory",
    description: "Commits a new version without the path (a directory needs `recursive`).",
    errors: ["INVALID", "NOT_FOUND", "VOLUME_BUSY"],
  },
  [`POST ${VOL}/copy`]: {
    summary: "Copy files inside the volume",
    description: "Commits a new version with the sources copied to `dst` (no data moves: blocks are shared).",
    errors: ["INVALID", "NOT_FOUND", "VOLUME_BUSY"],
    fields: { srcPaths: "Paths to copy", dst: "Target path, or a directory to copy into" },
  },
  [`GET ${VOL}/list`]: {
    summary: "List a directory",
    description: "The entries under `path` (with `recursive`, everything below), paged.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
  },
  [`POST ${VOL}/files`]: {
    summary: "Read several small files",
    description: "The contents of small files in one call (larger ones are read as streams).",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
    fields: { paths: "Paths of the files to read" },
  },
  [`GET ${VOL}/file`]: {
    summary: "Download a file",
    description:
      "The file's bytes as a stream. One `Range: bytes=start-end`, `start-` or `-suffix` is honoured (206 with Content-Range; " +
      "an end past the file is clipped); a range starting at or past the end answers 416 with `Content-Range: bytes */SIZE`.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE", "RANGE_NOT_SATISFIABLE"],
  },
  [`POST ${VOL}/pins`]: {
    summary: "Pin a version",
    description: "Keeps a version readable (GC skips it) until the pin lapses; a mount pins the version it serves and renews the pin.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
  },
  [`GET ${VOL}/pins`]: {
    summary: "List live pins",
    description: "The pins that have not lapsed, each with its version and expiry: every live mount of the volume holds one.",
    errors: ["NOT_FOUND"],
  },
  [`PUT ${VOL}/pins/:pinId`]: {
    summary: "Renew (or move) a pin",
    description: "Extends the pin's lifetime, optionally moving it to another version.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE"],
  },
  [`DELETE ${VOL}/pins/:pinId`]: {
    summary: "Drop a pin",
    description: "The pinned version may be collected from now on (if outside retention).",
    errors: ["NOT_FOUND"],
  },
  [`GET ${VOL}/history`]: {
    summary: "List versions (history)",
    description:
      "Retained versions, newest first: when each was committed, by which token, a note for versions the server made (restores, forks), and what it put and removed (counts and the first paths). With `path`: only versions that changed it or anything below it.",
    errors: ["INVALID", "NOT_FOUND"],
    fields: { before: "Only versions older than this (the previous page's `next`)" },
  },
  [`POST ${VOL}/restore`]: {
    summary: "Restore a path or the whole volume from a version",
    description:
      "Brings `path` (default: the whole volume) back to what it was in `version`, as a new commit that changes only what differs (no new version if nothing does). Blocks are shared, no data moves.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE", "NO_SPACE"],
  },
  [`POST ${VOL}/fork`]: {
    summary: "Fork a version into a new volume",
    description:
      "Creates the named volume (same kind, environment and inode limit) holding `version` (default: the latest) of this one. No bytes are copied: both share the blocks, and GC keeps a block while any of them uses it.",
    errors: ["INVALID", "NOT_FOUND", "VERSION_GONE", "ALREADY_EXISTS"],
  },
  "POST /v1/secrets": {
    summary: "Create a secret",
    description: "Stores key/value pairs encrypted at rest under a name.",
    errors: ["INVALID", "ALREADY_EXISTS", "TOO_LARGE"],
    fields: { overwrite: "Replace the values of an existing secret of that name" },
  },
  "PUT /v1/secrets/:id/values": {
    summary: "Replace a secret's values",
    description: "The new key/value pairs replace all old ones.",
    errors: ["INVALID", "NOT_FOUND", "TOO_LARGE"],
  },
  "GET /v1/secrets/:id/values": {
    summary: "Read a secret's values",
    description: "The decrypted key/value pairs.",
    errors: ["NOT_FOUND"],
  },
  "GET /v1/secrets/:id/keys": {
    summary: "A secret's keys",
    description: "The secret's key names, without values.",
    errors: ["NOT_FOUND"],
  },
};

export const routeDocKey = (method: string, url: string) => `${method.toUpperCase()} ${url}`;

/** The statuses a route may answer with an error, each with the codes behind it. */
export function errorResponses(doc: RouteDoc, authenticated: boolean): Map<number, ErrorCode[]> {
  const codes: ErrorCode[] = [...(authenticated ? (["AUTH"] as ErrorCode[]) : []), ...doc.errors, "INTERNAL"];
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}
