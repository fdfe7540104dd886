/**
 * The dict routes' wire contract, stated once with TypeBox: the server validates against these
 * schemas and derives its handlers' types from them.
 */
import { type Static, Type } from "typebox";
import { DICT_LIMITS } from "./limits.js";
import { IdSchema } from "./name-schemas.js";

/** Binary data: msgpack bin, or standard base64 in JSON (the server's `x-bytes` keyword checks and decodes it). */
const Bytes = Type.Unsafe<Uint8Array>({ "x-bytes": true });
/** A key (or a scan cursor): at most DICT_LIMITS.keyBytes, refused at the edge rather than deep in the store. */
const KeyBytes = Type.Unsafe<Uint8Array>({ "x-bytes": DICT_LIMITS.keyBytes });

export const DictParams = Type.Object({ id: IdSchema });

/** One operation of a batch; each answers on its own. */
export const DictOpSchema = Type.Union([
  Type.Object({ op: Type.Literal("get"), key: Bytes }),
  Type.Object({ op: Type.Literal("contains"), key: Bytes }),
  Type.Object({ op: Type.Literal("len") }),
  Type.Object({ op: Type.Literal("put"), key: Bytes, value: Bytes, skipIfExists: Type.Optional(Type.Boolean()) }),
  Type.Object({ op: Type.Literal("pop"), key: Bytes }),
  Type.Object({ op: Type.Literal("update"), entries: Type.Array(Type.Tuple([Bytes, Bytes])) }),
]);
export const DictOpsBody = Type.Object({ ops: Type.Array(DictOpSchema, { maxItems: DICT_LIMITS.opsPerRequest }) });

export const DictScanBody = Type.Object({
  after: Type.Optional(KeyBytes),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: DICT_LIMITS.scanPage })),
  values: Type.Optional(Type.Boolean()),
  /** Also answer each entry's expiry time. */
  expiry: Type.Optional(Type.Boolean()),
});

const TtlMs = Type.Integer({ minimum: 100, maximum: 24 * 60 * 60 * 1000 });
export const LockAcquireBody = Type.Object({ key: KeyBytes, ttlMs: TtlMs, waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })) });
export const LockRenewBody = Type.Object({ key: KeyBytes, leaseId: IdSchema, ttlMs: TtlMs });
export const LockReleaseBody = Type.Object({ key: KeyBytes, leaseId: IdSchema });

export type DictOpRequest = Static<typeof DictOpSchema>;
export type DictScanRequest = Static<typeof DictScanBody>;
