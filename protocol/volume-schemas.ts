/**
 * Request schemas of the volume manifest routes (TypeBox: one definition gives the route's JSON
 * schema and the handler's types). The types they check are protocol/volume.ts's; what a schema
 * can not say (xattr namespaces and sizes, hard-link agreement, block lists) the commit checks.
 */
import { Type } from "typebox";
import { SPECIAL_TYPES, VOLUME_LIMITS } from "./volume.js";

/** A TimeNs: nanoseconds since the epoch in decimal, no leading zeros (the commit checks the signed 64-bit range). */
export const TIME_NS_PATTERN = "^(0|-?[1-9][0-9]{0,18})$";
/** A linkId: 1-64 URL-safe characters. */
export const LINK_ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$";
/** Largest uid/gid: 2^32 - 2 ((uid_t)-1 means "no change" to chown, never an owner). */
export const MAX_ID = 2 ** 32 - 2;
/** Device numbers are Linux's 32-bit encoding (what FUSE and new_encode_dev carry). */
export const MAX_RDEV = 2 ** 32 - 1;

const TimeNs = Type.String({ pattern: TIME_NS_PATTERN });
const Id = Type.Integer({ minimum: 0, maximum: MAX_ID });

export const ManifestEntrySchema = Type.Object({
  path: Type.String(),
  type: Type.Union(["file", "directory", "symlink", ...SPECIAL_TYPES].map((t) => Type.Literal(t))),
  mode: Type.Optional(Type.Integer({ minimum: 0, maximum: 0o7777 })),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  mtimeMs: Type.Optional(Type.Number()),
  uid: Type.Optional(Id),
  gid: Type.Optional(Id),
  mtimeNs: Type.Optional(TimeNs),
  atimeNs: Type.Optional(TimeNs),
  ctimeNs: Type.Optional(TimeNs),
  rdev: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_RDEV })),
  linkId: Type.Optional(Type.String({ pattern: LINK_ID_PATTERN })),
  xattrs: Type.Optional(
    Type.Record(Type.String({ maxLength: VOLUME_LIMITS.maxXattrNameBytes }), Type.String({ pattern: "^[A-Za-z0-9+/]*={0,2}$" }), {
      maxProperties: VOLUME_LIMITS.maxXattrTotalBytes,
    }),
  ),
  // A block's hash, or a whole number of blocks of zeros (a hole); see BlockRef. Items are
  // checked in the commit (checkEntry): a type union needs ajv's allowUnionTypes.
  blocks: Type.Optional(Type.Array(Type.Unknown({ description: "a block's hex SHA-256, or a whole number n ≥ 1: n blocks of zeros (a hole)" }))),
  target: Type.Optional(Type.String()),
});

export const ChangeSchema = Type.Union([
  Type.Object({ op: Type.Literal("put"), entry: ManifestEntrySchema }),
  Type.Object({ op: Type.Literal("delete"), path: Type.String() }),
]);

export const CommitBody = Type.Object({
  baseVersion: Type.Integer({ minimum: 0 }),
  changes: Type.Array(ChangeSchema),
  overwrite: Type.Optional(Type.Union([Type.Literal("replace"), Type.Literal("files"), Type.Literal("none")])),
});
