import type { FastifyInstance } from "fastify";
import type { Change, CommitRequest } from "../../protocol/volume.js";
import { invalid } from "../errors.js";
import type { Overwrite } from "./commit.js";
import { planCopy, planRemove } from "./file-ops.js";
import type { VolumeStore } from "./volume-store.js";

type IdParams = { id: string };
const versionQuery = { type: "integer", minimum: 0 } as const;

const entrySchema = {
  type: "object",
  required: ["path", "type"],
  properties: {
    path: { type: "string" },
    type: { type: "string", enum: ["file", "directory", "symlink"] },
    mode: { type: "integer" },
    size: { type: "integer", minimum: 0 },
    mtimeMs: { type: "number" },
    blocks: { type: "array", items: { type: "string" } },
    target: { type: "string" },
  },
} as const;

const changeSchema = {
  type: "object",
  required: ["op"],
  properties: { op: { type: "string", enum: ["put", "delete"] }, path: { type: "string" }, entry: entrySchema },
  if: { properties: { op: { const: "put" } } },
  then: { required: ["entry"] },
  else: { required: ["path"] },
} as const;

/** Versions, commits, deltas and trees: the API a mount (and the client's file helpers) build on. */
export async function manifestRoutes(app: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;

  app.get<{ Params: IdParams }>("/v1/volumes/:id/version", async (req) => ({
    version: volumes.open(req.caller, req.params.id).st.latest,
  }));

  app.get<{ Params: IdParams }>("/v1/volumes/:id/info", async (req) => {
    const { record, st } = volumes.open(req.caller, req.params.id);
    return {
      id: record.id,
      name: record.name,
      environment: record.environment,
      createdAt: record.createdAt,
      version: st.latest,
      oldestVersion: st.oldest,
      inodes: st.inodes,
      inodeLimit: volumes.limits(record).inodeLimit,
    };
  });

  app.post<{ Params: IdParams; Body: CommitRequest & { overwrite?: Overwrite } }>(
    "/v1/volumes/:id/commit",
    {
      schema: {
        body: {
          type: "object",
          required: ["baseVersion", "changes"],
          properties: {
            baseVersion: { type: "integer", minimum: 0 },
            changes: { type: "array", items: changeSchema },
            overwrite: { type: "string", enum: ["replace", "files", "none"] },
          },
        },
      },
    },
    async (req) => {
      const vol = volumes.open(req.caller, req.params.id);
      if (req.body.baseVersion > vol.st.latest) throw invalid(`Base version ${req.body.baseVersion} is newer than the latest (${vol.st.latest})`);
      return { version: volumes.commit(vol, req.body.changes as Change[], req.body.overwrite) };
    },
  );

  app.get<{ Params: IdParams; Querystring: { from: number; to?: number } }>(
    "/v1/volumes/:id/delta",
    { schema: { querystring: { type: "object", required: ["from"], properties: { from: versionQuery, to: versionQuery } } } },
    async (req) => {
      const { st } = volumes.open(req.caller, req.params.id);
      const to = req.query.to ?? st.latest;
      const { from } = req.query;
      if (from > to) throw invalid(`Delta needs from ≤ to (got ${from} > ${to})`);
      volumes.store.checkVersion(st, to);
      volumes.store.checkVersion(st, from);
      return volumes.store.delta(st, from, to);
    },
  );

  app.get<{ Params: IdParams; Querystring: { version?: number; after?: string; limit?: number } }>(
    "/v1/volumes/:id/tree",
    {
      schema: {
        querystring: {
          type: "object",
          properties: { version: versionQuery, after: { type: "string" }, limit: { type: "integer", minimum: 1, maximum: 10_000 } },
        },
      },
    },
    async (req) => {
      const { st } = volumes.open(req.caller, req.params.id);
      const version = req.query.version ?? st.latest;
      volumes.store.checkVersion(st, version);
      return volumes.store.tree(st, version, req.query.after ?? "", req.query.limit ?? 1000);
    },
  );

  app.post<{ Params: IdParams; Body: { path: string; recursive?: boolean } }>(
    "/v1/volumes/:id/remove",
    {
      schema: {
        body: { type: "object", required: ["path"], properties: { path: { type: "string" }, recursive: { type: "boolean" } } },
      },
    },
    async (req) => {
      const vol = volumes.open(req.caller, req.params.id);
      return { version: volumes.commit(vol, planRemove(volumes.store, vol.st, req.body.path, req.body.recursive ?? false)) };
    },
  );

  app.post<{ Params: IdParams; Body: { srcPaths: string[]; dst: string; recursive?: boolean } }>(
    "/v1/volumes/:id/copy",
    {
      schema: {
        body: {
          type: "object",
          required: ["srcPaths", "dst"],
          properties: { srcPaths: { type: "array", items: { type: "string" } }, dst: { type: "string" }, recursive: { type: "boolean" } },
        },
      },
    },
    async (req) => {
      const vol = volumes.open(req.caller, req.params.id);
      const changes = planCopy(volumes.store, vol.st, req.body.srcPaths, req.body.dst, req.body.recursive ?? false);
      return { version: volumes.commit(vol, changes, "files") };
    },
  );
}
