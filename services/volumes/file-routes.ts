import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import type { TreePage } from "../../protocol/volume.js";
import { VOLUME_ROUTE_LIMITS } from "../../protocol/volume-limits.js";
import { FileQuery, ListQuery, SmallFilesBody, VolumeIdParams } from "../../protocol/volume-routes.js";
import { envelope } from "../../protocol/codec.js";
import { invalid } from "../errors.js";
import { acceptsMsgpack } from "../http/codec.js";
import { ListingCache } from "./listing-cache.js";
import { normalizePath } from "./paths.js";
import { sendParts } from "../http/send-file.js";
import { requestedRange } from "./range.js";
import type { VolumeStore } from "./volume-store.js";

/** File-level reads for clients without a mount: list a path, read a file (ranged stream), read many small files at once. */
export async function fileRoutes(fastify: FastifyInstance, opts: { volumes: VolumeStore; listings: ListingCache }) {
  const { volumes, listings } = opts;
  // Schemas and handler types from one definition each (protocol/volume-routes.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/v1/volumes/:id/list",
    { schema: { params: VolumeIdParams, querystring: ListQuery } },
    async (req): Promise<TreePage | Buffer> => {
      // Who may read the volume, and whether the version is retained, are asked every time: the cache holds neither.
      const vol = await volumes.open(req.caller, req.params.id);
      const version = await volumes.store.checkVersion(vol.st.volume, req.query.version);
      const path = normalizePath(req.query.path ?? "");
      const recursive = req.query.recursive ?? false;
      const after = req.query.after ?? "";
      const limit = req.query.limit ?? VOLUME_ROUTE_LIMITS.defaultPage;
      // Keyed by the resolved version: "the latest" names another listing after each commit.
      const key = acceptsMsgpack(req) ? ListingCache.key(vol.st.volume, version, path, recursive, after, limit) : undefined;
      const cached = key === undefined ? undefined : listings.get(key);
      if (cached) return cached;
      const { entry } = await volumes.lookup(vol, version, path);
      // A file lists as itself; a directory lists its contents.
      const page = entry !== "root" && entry.type !== "directory" ? { version, entries: [entry] } : await volumes.store.list(vol.st.volume, version, path, recursive, after, limit);
      if (key === undefined) return page;
      // Encoded here, once, and sent as is (a Buffer skips the reply serializer).
      const encoded = envelope.pack(page);
      listings.set(key, encoded);
      return encoded;
    },
  );

  app.post(
    "/v1/volumes/:id/files",
    { schema: { params: VolumeIdParams, body: SmallFilesBody } },
    async (req) => {
      const vol = await volumes.open(req.caller, req.params.id);
      return volumes.readSmallFiles(vol, req.body.version, req.body.paths);
    },
  );

  app.get(
    "/v1/volumes/:id/file",
    { schema: { params: VolumeIdParams, querystring: FileQuery } },
    async (req, reply) => {
      const vol = await volumes.open(req.caller, req.params.id);
      const { version, entry: row } = await volumes.lookup(vol, req.query.version, req.query.path);
      if (row === "root" || row.type === "directory") throw invalid(`'${req.query.path}' is a directory, not a file`);
      if (row.type === "symlink") throw invalid(`'${req.query.path}' is a symlink (to '${row.target}'), not a file`);
      if (row.type !== "file") throw invalid(`'${req.query.path}' is a ${row.type}, not a file: special files have no bytes`);
      const range = requestedRange(req.headers.range, row.size, reply);
      // A client that can read from the object store itself gets where the bytes are instead.
      const direct = req.headers["x-silo-direct"] === "1" ? await volumes.directFileRead(vol, version, row, range) : undefined;
      if (direct) return reply.header("x-silo-direct", "1").send(direct);
      const headers: Record<string, string | number> = { "content-type": "application/octet-stream", "x-silo-version": version };
      if (req.headers.range) headers["content-range"] = `bytes ${range.start}-${range.end - 1}/${row.size}`;
      return sendParts(reply, req.headers.range ? 206 : 200, headers, range.end - range.start, volumes.fileParts(vol, row, range));
    },
  );
}
