/**
 * The volume routes' request schemas and their limits, stated once with TypeBox: the server
 * validates against these schemas and derives its handlers' types from them; the client sizes its
 * requests by the same limits. The commit body is volume-schemas.ts's.
 */
import { type Static, Type } from "typebox";
import { BLOCK_HASH_PATTERN, VOLUME_ROUTE_LIMITS } from "./volume-limits.js";
import { BLOCK_SIZE } from "./volume.js";

const Hash = Type.String({ pattern: BLOCK_HASH_PATTERN });
const Version = Type.Integer({ minimum: 0 });
const Page = Type.Integer({ minimum: 1, maximum: VOLUME_ROUTE_LIMITS.maxPage });
const hashList = (maxItems: number) => Type.Object({ hashes: Type.Array(Hash, { maxItems }) });

export const VolumeIdParams = Type.Object({ id: Type.String() });
export const BlockParams = Type.Object({ id: Type.String(), hash: Hash });
export const PinParams = Type.Object({ id: Type.String(), pinId: Type.String() });

export const MissingBlocksBody = hashList(VOLUME_ROUTE_LIMITS.missingHashes);
export const DirectHashesBody = hashList(VOLUME_ROUTE_LIMITS.directHashes);
/** Binary data: msgpack bin, or standard base64 in JSON (the server's `x-bytes` keyword checks and decodes it). */
const Bytes = Type.Unsafe<Uint8Array>({ "x-bytes": true });
export const SmallBlocksBody = Type.Object({
  blocks: Type.Array(Type.Object({ hash: Hash, data: Bytes }), { maxItems: VOLUME_ROUTE_LIMITS.blocksPerBatch }),
});

/**
 * A new block composed on the server (POST /v1/volumes/:id/blocks/compose): the first
 * `baseLength` bytes of the stored block `base` (of the caller's workspace, as any block it may
 * read), zeros up to `length`, and each range's bytes over them at its offset. Ranges are sorted
 * and do not overlap (touching is fine); each lies within `length`, and `baseLength` within the
 * base's size (the server checks what the schema can not say; a bad request is INVALID, an
 * unknown base NOT_FOUND). The server stores the block durably and answers its hash and size;
 * the block then counts as uploaded (GC keeps it for its grace period, like an upload).
 */
export const ComposeBlockBody = Type.Object({
  base: Hash,
  baseLength: Type.Integer({ minimum: 0, maximum: BLOCK_SIZE }),
  length: Type.Integer({ minimum: 1, maximum: BLOCK_SIZE }),
  ranges: Type.Array(Type.Object({ offset: Type.Integer({ minimum: 0, maximum: BLOCK_SIZE - 1 }), data: Type.Unsafe<Uint8Array>({ "x-bytes": BLOCK_SIZE }) }), {
    maxItems: VOLUME_ROUTE_LIMITS.composeRanges,
  }),
});
export type ComposeBlockRequest = Static<typeof ComposeBlockBody>;

export const ListQuery = Type.Object({
  path: Type.Optional(Type.String()),
  recursive: Type.Optional(Type.Boolean()),
  version: Type.Optional(Version),
  after: Type.Optional(Type.String()),
  limit: Type.Optional(Page),
});
export const SmallFilesBody = Type.Object({
  paths: Type.Array(Type.String(), { maxItems: VOLUME_ROUTE_LIMITS.filesPerRead }),
  version: Type.Optional(Version),
});
export const FileQuery = Type.Object({ path: Type.String(), version: Type.Optional(Version) });

/** Every name of some hard links (link ids) in a version (absent: the latest). */
export const LinksBody = Type.Object({
  linkIds: Type.Array(Type.String(), { maxItems: VOLUME_ROUTE_LIMITS.linkIdsPerRequest }),
  version: Type.Optional(Version),
});
export const DeltaQuery = Type.Object({ from: Version, to: Type.Optional(Version) });
export const TreeQuery = Type.Object({ version: Type.Optional(Version), after: Type.Optional(Type.String()), limit: Type.Optional(Page) });
export const RemoveBody = Type.Object({ path: Type.String(), recursive: Type.Optional(Type.Boolean()) });
export const CopyBody = Type.Object({ srcPaths: Type.Array(Type.String()), dst: Type.String(), recursive: Type.Optional(Type.Boolean()) });

/** A pin's version (absent: the latest); the body itself may be absent. */
export const PinBody = Type.Object({ version: Type.Optional(Version) });

export const HistoryQuery = Type.Object({
  path: Type.Optional(Type.String()),
  before: Type.Optional(Version),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: VOLUME_ROUTE_LIMITS.maxHistoryPage })),
});
export const RestoreBody = Type.Object({ version: Version, path: Type.Optional(Type.String()) });
export const ForkBody = Type.Object({ name: Type.String(), version: Type.Optional(Version) });
