import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { DictOpsBody, DictParams, DictScanBody, LockAcquireBody, LockReleaseBody, LockRenewBody } from "../../protocol/dict.js";
import { DICT_LIMITS } from "../../protocol/limits.js";
import type { DictEntries } from "./entries.js";
import type { GroupCommit } from "../kv-group-commit.js";
import type { DictLocks } from "./locks.js";
import type { Caller } from "../auth/authenticate.js";
import type { ObjectRegistry } from "../objects/registry.js";
import { type DictOp, runOps } from "./ops.js";

export interface DictRouteDeps {
  registry: ObjectRegistry;
  commits: GroupCommit;
  entries: DictEntries;
  locks: DictLocks;
}

/** The Dict's data routes; named-object management is the shared `/v1/objects/dict/...`. */
export async function dictRoutes(fastify: FastifyInstance, { registry, commits, entries, locks }: DictRouteDeps) {
  // Schemas and handler types from one definition each (protocol/dict.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  /** Byte fields arrive as Buffers (msgpack bin, or base64 the x-bytes keyword decoded); the schema types them as Uint8Array. */
  const buf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  // JSON callers get keys and values as base64 (the codec's reply serializer); msgpack callers get bin.
  const dictId = (req: { caller: Caller; params: { id: string } }) => registry.resolveId(req.caller, "dict", req.params.id);

  app.post(
    "/v1/dicts/:id/ops",
    {
      schema: {
        description: "Runs a batch of dict operations in order; each answers `{ok}` or `{error}`. Batches with a write are one durable transaction.",
        params: DictParams,
        body: DictOpsBody,
      },
    },
    // The decoded ops hold Buffers (see buf); DictOp is the same shape with Buffer for Uint8Array.
    async (req) => ({ results: await runOps(commits, entries, dictId(req), req.body.ops as DictOp[], req.log) }),
  );

  app.post(
    "/v1/dicts/:id/scan",
    {
      schema: {
        description: "One page of entries in key-byte order after the cursor `after`; `cursor` is null on the last page.",
        params: DictParams,
        body: DictScanBody,
      },
    },
    async (req) => {
      const body = req.body ?? {};
      return entries.scan(dictId(req), {
        after: body.after && buf(body.after),
        limit: body.limit ?? DICT_LIMITS.defaultScanPage,
        values: body.values ?? true,
        expiry: body.expiry ?? false,
      });
    },
  );

  app.post("/v1/dicts/:id/clear", { schema: { params: DictParams } }, async (req) => {
    await entries.clear(dictId(req));
    return {};
  });

  app.post(
    "/v1/dicts/:id/locks/acquire",
    {
      schema: {
        description: "Takes a lock lease, waiting up to waitMs (long-poll). `{acquired:false}` if it stayed held.",
        params: DictParams,
        body: LockAcquireBody,
      },
    },
    async (req, reply) => {
      const id = dictId(req);
      // A caller that hangs up stops waiting (and never gets a lock nobody would release).
      const gone = new AbortController();
      reply.raw.once("close", () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const lease = await locks.acquire(id, buf(req.body.key), req.body.ttlMs, req.body.waitMs ?? 0, gone.signal);
      return lease ? { acquired: true, ...lease } : { acquired: false };
    },
  );

  app.post(
    "/v1/dicts/:id/locks/renew",
    { schema: { params: DictParams, body: LockRenewBody } },
    async (req) => locks.renew(dictId(req), buf(req.body.key), req.body.leaseId, req.body.ttlMs),
  );

  app.post(
    "/v1/dicts/:id/locks/release",
    { schema: { params: DictParams, body: LockReleaseBody } },
    async (req) => ({ released: await locks.release(dictId(req), buf(req.body.key), req.body.leaseId) }),
  );
}
