import type { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { invalid } from "../errors.js";
import { requestedRange } from "./range.js";
import type { VolumeStore } from "./volume-store.js";

const hashPattern = "^[0-9a-f]{64}$";
type IdParams = { id: string };
type HashParams = IdParams & { hash: string };
const hashParams = {
  type: "object",
  required: ["id", "hash"],
  properties: { id: { type: "string" }, hash: { type: "string", pattern: hashPattern } },
} as const;

/** Content-addressed blocks of a volume's workspace: which are missing, upload (one or a batch), ranged read. */
export async function blockRoutes(app: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;
  // Raw block bodies reach the handler as a stream (never buffered whole); only in this plugin's scope.
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  app.post<{ Params: IdParams; Body: { hashes: string[] } }>(
    "/v1/volumes/:id/blocks/missing",
    {
      schema: {
        body: {
          type: "object",
          required: ["hashes"],
          properties: { hashes: { type: "array", maxItems: 100_000, items: { type: "string", pattern: hashPattern } } },
        },
      },
    },
    async (req) => {
      const vol = await volumes.open(req.caller, req.params.id);
      return { missing: await volumes.missingBlocks(vol, req.body.hashes) };
    },
  );

  app.put<{ Params: HashParams; Body: Readable }>(
    "/v1/volumes/:id/blocks/:hash",
    { schema: { params: hashParams } },
    async (req) => {
      // Only an application/octet-stream body arrives as a stream; any other type is a bad request.
      if (typeof (req.body as Partial<Readable> | undefined)?.[Symbol.asyncIterator] !== "function") {
        throw invalid("A block upload's body must be the block's bytes, sent as application/octet-stream");
      }
      const vol = await volumes.open(req.caller, req.params.id);
      await volumes.uploadBlock(vol, req.params.hash, req.body);
      return {};
    },
  );

  // Many small blocks in one request (e.g. 10,000 small files): one round trip per batch.
  app.post<{ Params: IdParams; Body: { blocks: Array<{ hash: string; data: Buffer }> } }>(
    "/v1/volumes/:id/blocks",
    {
      schema: {
        body: {
          type: "object",
          required: ["blocks"],
          properties: {
            blocks: {
              type: "array",
              maxItems: 10_000,
              items: {
                type: "object",
                required: ["hash", "data"],
                properties: { hash: { type: "string", pattern: hashPattern }, data: { "x-bytes": true } },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const vol = await volumes.open(req.caller, req.params.id);
      await volumes.uploadSmallBlocks(vol, req.body.blocks);
      return { stored: req.body.blocks.length };
    },
  );

  const hashList = {
    body: {
      type: "object",
      required: ["hashes"],
      properties: { hashes: { type: "array", maxItems: 1000, items: { type: "string", pattern: hashPattern } } },
    },
  } as const;

  // With an object-store backend: signed requests that upload blocks straight to the store…
  app.post<{ Params: IdParams; Body: { hashes: string[] } }>("/v1/volumes/:id/blocks/direct-uploads", { schema: hashList }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    return volumes.directUploads(vol, req.body.hashes);
  });

  // …and the confirmation that they arrived, which records them.
  app.post<{ Params: IdParams; Body: { hashes: string[] } }>("/v1/volumes/:id/blocks/confirm", { schema: hashList }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    await volumes.confirmUploads(vol, req.body.hashes);
    return {};
  });

  app.get<{ Params: HashParams }>("/v1/volumes/:id/blocks/:hash", { schema: { params: hashParams } }, async (req, reply) => {
    const vol = await volumes.open(req.caller, req.params.id);
    const size = await volumes.blockSize(vol, req.params.hash);
    // In an object store: the client reads the bytes there (Range applies to the new location).
    const url = await volumes.blockUrl(vol, req.params.hash);
    if (url) return reply.header("cache-control", "no-store").redirect(url, 307);
    const range = requestedRange(req.headers.range, size, reply);
    const body = await volumes.readBlock(vol, req.params.hash, range);
    if (req.headers.range) reply.status(206).header("content-range", `bytes ${range.start}-${range.end - 1}/${size}`);
    return reply
      .header("content-type", "application/octet-stream")
      .header("content-length", range.end - range.start)
      .send(body);
  });

}
