/**
 * Request schemas of the volume manifest routes (TypeBox: one definition gives the route's JSON
 * schema and the handler's types). The types they check are protocol/volume.ts's; what a schema
 * can not say (xattr namespaces and sizes, hard-link agreement, block lists) the commit checks.
 */
import { Type } from "typebox";
import { VOLUME_LIMITS } from "./volume.js";

/** Nanoseconds since the epoch in decimal (TimeNs); the commit checks the signed 64-bit range. */
const TimeNs = Type.String({ pattern: "^(0|-?[1-9][0-9]{0,18})$" });
/** uid/gid: 0 … 2^32 - 2 ((uid_t)-1 means "no change" to chown, never an owner). */
const Id = Type.Integer({ minimum: 0, maximum: 2 ** 32 - 2 });

export const ManifestEntrySchema = Type.Object({
  path: Type.String(),
  type: Type.Union(["file", "directory", "symlink", "fifo", "socket", "char", "block"].map((t) => Type.Literal(t))),
  mode: Type.Optional(Type.Integer({ minimum: 0, maximum: 0o7777 })),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  mtimeMs: Type.Optional(Type.Number()),
  uid: Type.Optional(Id),
  gid: Type.Optional(Id),
  mtimeNs: Type.Optional(TimeNs),
  atimeNs: Type.Optional(TimeNs),
  ctimeNs: Type.Optional(TimeNs),
  rdev: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 })),
  linkId: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" })),
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
