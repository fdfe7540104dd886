import type { FastifyInstance, FastifyRequest } from "fastify";
import type { DictEntries } from "./entries.js";
import { DICT_LIMITS } from "../../protocol/limits.js";
import type { GroupCommit } from "../kv-group-commit.js";
import type { DictLocks } from "./locks.js";
import type { ObjectRegistry } from "../objects/registry.js";
import { type DictOp, runOps } from "./ops.js";

type IdParams = { id: string };
const bytes = { "x-bytes": true } as const;
/** A dict key: at most DICT_LIMITS.keyBytes (LMDB keys are bounded; longer ones are refused here, not deep in the store). */
const keyBytes = { "x-bytes": DICT_LIMITS.keyBytes } as const;
const requires = (op: string, fields: string[]) => ({ if: { properties: { op: { const: op } } }, then: { required: fields } });

const opSchema = {
  type: "object",
  required: ["op"],
  properties: {
    op: { enum: ["get", "contains", "len", "put", "pop", "update"] },
    key: bytes,
    value: bytes,
    skipIfExists: { type: "boolean" },
    entries: { type: "array", items: { type: "array", minItems: 2, maxItems: 2, items: bytes } },
  },
  allOf: [
    requires("get", ["key"]),
    requires("contains", ["key"]),
    requires("pop", ["key"]),
    requires("put", ["key", "value"]),
    requires("update", ["entries"]),
  ],
} as const;

const ttlMs = { type: "integer", minimum: 100, maximum: 24 * 60 * 60 * 1000 } as const;

export interface DictRouteDeps {
  registry: ObjectRegistry;
  commits: GroupCommit;
  entries: DictEntries;
  locks: DictLocks;
}

/** The Dict's data routes; named-object management is the shared `/v1/objects/dict/...`. */
export async function dictRoutes(app: FastifyInstance, { registry, commits, entries, locks }: DictRouteDeps) {
  // JSON callers get keys and values as base64 (the codec's reply serializer); msgpack callers get bin.
  const dictId = (req: FastifyRequest<{ Params: IdParams }>) => registry.resolveId(req.caller, "dict", req.params.id);

  app.post<{ Params: IdParams; Body: { ops: DictOp[] } }>(
    "/v1/dicts/:id/ops",
    {
      schema: {
        description: "Runs a batch of dict operations in order; each answers `{ok}` or `{error}`. Batches with a write are one durable transaction.",
        body: { type: "object", required: ["ops"], properties: { ops: { type: "array", maxItems: DICT_LIMITS.opsPerRequest, items: opSchema } } },
      },
    },
    async (req) => ({ results: await runOps(commits, entries, dictId(req), req.body.ops, req.log) }),
  );

  app.post<{ Params: IdParams; Body: { after?: Buffer; limit?: number; values?: boolean } }>(
    "/v1/dicts/:id/scan",
    {
      schema: {
        description: "One page of entries in key-byte order after the cursor `after`; `cursor` is null on the last page.",
        body: {
          type: "object",
          properties: { after: keyBytes, limit: { type: "integer", minimum: 1, maximum: DICT_LIMITS.scanPage }, values: { type: "boolean" } },
        },
      },
    },
    async (req) => {
      const body = req.body ?? {};
      return entries.scan(dictId(req), { after: body.after, limit: body.limit ?? 1000, values: body.values ?? true });
    },
  );

  app.post<{ Params: IdParams }>("/v1/dicts/:id/clear", async (req) => {
    await entries.clear(dictId(req));
    return {};
  });

  app.post<{ Params: IdParams; Body: { key: Buffer; ttlMs: number; waitMs?: number } }>(
    "/v1/dicts/:id/locks/acquire",
    {
      schema: {
        description: "Takes a lock lease, waiting up to waitMs (long-poll). `{acquired:false}` if it stayed held.",
        body: { type: "object", required: ["key", "ttlMs"], properties: { key: keyBytes, ttlMs, waitMs: { type: "integer", minimum: 0, maximum: 60_000 } } },
      },
    },
    async (req, reply) => {
      const id = dictId(req);
      // A caller that hangs up stops waiting (and never gets a lock nobody would release).
      const gone = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const lease = await locks.acquire(id, req.body.key, req.body.ttlMs, req.body.waitMs ?? 0, gone.signal);
      return lease ? { acquired: true, ...lease } : { acquired: false };
    },
  );

  app.post<{ Params: IdParams; Body: { key: Buffer; leaseId: string; ttlMs: number } }>(
    "/v1/dicts/:id/locks/renew",
    { schema: { body: { type: "object", required: ["key", "leaseId", "ttlMs"], properties: { key: keyBytes, leaseId: { type: "string", maxLength: 64 }, ttlMs } } } },
    async (req) => locks.renew(dictId(req), req.body.key, req.body.leaseId, req.body.ttlMs),
  );

  app.post<{ Params: IdParams; Body: { key: Buffer; leaseId: string } }>(
    "/v1/dicts/:id/locks/release",
    { schema: { body: { type: "object", required: ["key", "leaseId"], properties: { key: keyBytes, leaseId: { type: "string", maxLength: 64 } } } } },
    async (req) => ({ released: await locks.release(dictId(req), req.body.key, req.body.leaseId) }),
  );
}
