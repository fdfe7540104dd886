import type { Readable } from "node:stream";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { BlockParams, ComposeBlockBody, DirectHashesBody, MissingBlocksBody, SmallBlocksBody, VolumeIdParams } from "../../protocol/volume-routes.js";
import { invalid } from "../errors.js";
import { onePart, sendParts } from "../http/send-file.js";
import { requestedRange } from "./range.js";
import type { VolumeStore } from "./volume-store.js";

/** Content-addressed blocks of a volume's workspace: which are missing, upload (one or a batch), ranged read. */
export async function blockRoutes(fastify: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;
  // Schemas and handler types from one definition each (protocol/volume-routes.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // Raw block bodies reach the handler as a stream (never buffered whole); only in this plugin's scope.
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  app.post("/v1/volumes/:id/blocks/missing", { schema: { params: VolumeIdParams, body: MissingBlocksBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    return { missing: await volumes.missingBlocks(vol, req.body.hashes) };
  });

  app.put("/v1/volumes/:id/blocks/:hash", { schema: { params: BlockParams } }, async (req) => {
    // Only an application/octet-stream body arrives as a stream; any other type is a bad request.
    const body = req.body as Partial<Readable> | undefined;
    if (typeof body?.[Symbol.asyncIterator] !== "function") {
      throw invalid("A block upload's body must be the block's bytes, sent as application/octet-stream");
    }
    const vol = await volumes.open(req.caller, req.params.id);
    await volumes.uploadBlock(vol, req.params.hash, body as Readable);
    return {};
  });

  // Many small blocks in one request (e.g. 10,000 small files): one round trip per batch.
  app.post("/v1/volumes/:id/blocks", { schema: { params: VolumeIdParams, body: SmallBlocksBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    await volumes.uploadSmallBlocks(vol, req.body.blocks);
    return { stored: req.body.blocks.length };
  });

  // A block made here from a stored base and written ranges: a mount commits a partly rewritten
  // block without fetching the base and uploading it back.
  app.post("/v1/volumes/:id/blocks/compose", { schema: { params: VolumeIdParams, body: ComposeBlockBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    return volumes.composeBlock(vol, req.body);
  });

  // With an object-store backend: signed requests that upload blocks straight to the store…
  app.post("/v1/volumes/:id/blocks/direct-uploads", { schema: { params: VolumeIdParams, body: DirectHashesBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    return volumes.directUploads(vol, req.body.hashes);
  });

  // …and the confirmation that they arrived, which records them.
  app.post("/v1/volumes/:id/blocks/confirm", { schema: { params: VolumeIdParams, body: DirectHashesBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    await volumes.confirmUploads(vol, req.body.hashes);
    return {};
  });

  app.get("/v1/volumes/:id/blocks/:hash", { schema: { params: BlockParams } }, async (req, reply) => {
    const vol = await volumes.open(req.caller, req.params.id);
    const size = await volumes.blockSize(vol, req.params.hash);
    // In an object store: the client reads the bytes there (Range applies to the new location).
    const url = await volumes.blockUrl(vol, req.params.hash);
    if (url) return reply.header("cache-control", "no-store").redirect(url, 307);
    const range = requestedRange(req.headers.range, size, reply);
    // Opened before anything is sent: a missing blob is a clean 404.
    const part = await volumes.blockPart(vol, req.params.hash, range);
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (req.headers.range) headers["content-range"] = `bytes ${range.start}-${range.end - 1}/${size}`;
    return sendParts(reply, req.headers.range ? 206 : 200, headers, range.end - range.start, onePart(part));
  });
}
