import type { FastifyInstance } from "fastify";
import type { TreePage } from "../../protocol/volume.js";
import { invalid } from "../errors.js";
import { normalizePath } from "./paths.js";
import { requestedRange } from "./range.js";
import type { VolumeStore } from "./volume-store.js";

type IdParams = { id: string };

/** File-level reads for clients without a mount: list a path, read a file (ranged stream), read many small files at once. */
export async function fileRoutes(app: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;

  app.get<{ Params: IdParams; Querystring: { path?: string; recursive?: boolean; version?: number; after?: string; limit?: number } }>(
    "/v1/volumes/:id/list",
    {
      schema: {
        querystring: {
          type: "object",
          properties: {
            path: { type: "string" },
            recursive: { type: "boolean" },
            version: { type: "integer", minimum: 0 },
            after: { type: "string" },
            limit: { type: "integer", minimum: 1, maximum: 10_000 },
          },
        },
      },
    },
    async (req): Promise<TreePage> => {
      const vol = await volumes.open(req.caller, req.params.id);
      const { version, entry } = await volumes.lookup(vol, req.query.version, req.query.path ?? "");
      // A file lists as itself; a directory lists its contents.
      if (entry !== "root" && entry.type !== "directory") return { version, entries: [entry] };
      const dir = normalizePath(req.query.path ?? "");
      return volumes.store.list(vol.st.volume, version, dir, req.query.recursive ?? false, req.query.after ?? "", req.query.limit ?? 1000);
    },
  );

  app.post<{ Params: IdParams; Body: { paths: string[]; version?: number } }>(
    "/v1/volumes/:id/files",
    {
      schema: {
        body: {
          type: "object",
          required: ["paths"],
          properties: { paths: { type: "array", maxItems: 1000, items: { type: "string" } }, version: { type: "integer", minimum: 0 } },
        },
      },
    },
    async (req) => {
      const vol = await volumes.open(req.caller, req.params.id);
      return volumes.readSmallFiles(vol, req.body.version, req.body.paths);
    },
  );

  app.get<{ Params: IdParams; Querystring: { path: string; version?: number } }>(
    "/v1/volumes/:id/file",
    {
      schema: {
        querystring: {
          type: "object",
          required: ["path"],
          properties: { path: { type: "string" }, version: { type: "integer", minimum: 0 } },
        },
      },
    },
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
      if (req.headers.range) reply.status(206).header("content-range", `bytes ${range.start}-${range.end - 1}/${row.size}`);
      return reply
        .header("content-type", "application/octet-stream")
        .header("content-length", range.end - range.start)
        .header("x-silo-version", version)
        .send(volumes.readFile(vol, row, range));
    },
  );
}
