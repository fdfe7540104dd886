import type { FastifyInstance } from "fastify";
import type { Change, CommitRequest } from "../../protocol/volume.js";
import { CommitBody } from "../../protocol/volume-schemas.js";
import { invalid } from "../errors.js";
import type { Overwrite } from "./commit.js";
import { planCopy, planRemove } from "./file-ops.js";
import type { VolumeStore } from "./volume-store.js";

type IdParams = { id: string };
const versionQuery = { type: "integer", minimum: 0 } as const;

/** Versions, commits, deltas and trees: the API a mount (and the client's file helpers) build on. */
export async function manifestRoutes(app: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;

  app.get<{ Params: IdParams }>("/v1/volumes/:id/version", async (req) => ({
    version: (await volumes.open(req.caller, req.params.id)).st.latest,
  }));

  app.get<{ Params: IdParams }>("/v1/volumes/:id/info", async (req) => {
    const { record, st } = await volumes.open(req.caller, req.params.id);
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
    { schema: { body: CommitBody } },
    async (req) => {
      const vol = await volumes.open(req.caller, req.params.id);
      if (req.body.baseVersion > vol.st.latest) throw invalid(`Base version ${req.body.baseVersion} is newer than the latest (${vol.st.latest})`);
      return { version: await volumes.commit(vol, req.caller, req.body.changes as Change[], req.body.overwrite) };
    },
  );

  app.get<{ Params: IdParams; Querystring: { from: number; to?: number } }>(
    "/v1/volumes/:id/delta",
    { schema: { querystring: { type: "object", required: ["from"], properties: { from: versionQuery, to: versionQuery } } } },
    async (req) => {
      const { st } = await volumes.open(req.caller, req.params.id);
      return volumes.store.delta(st.volume, req.query.from, req.query.to);
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
      const { st } = await volumes.open(req.caller, req.params.id);
      return volumes.store.tree(st.volume, req.query.version, req.query.after ?? "", req.query.limit ?? 1000);
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
      const vol = await volumes.open(req.caller, req.params.id);
      const changes = await planRemove(volumes.store, vol.st.volume, req.body.path, req.body.recursive ?? false);
      return { version: await volumes.commit(vol, req.caller, changes) };
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
      const vol = await volumes.open(req.caller, req.params.id);
      const changes = await planCopy(volumes.store, vol.st.volume, req.body.srcPaths, req.body.dst, req.body.recursive ?? false, volumes.clock.now());
      return { version: await volumes.commit(vol, req.caller, changes, "files") };
    },
  );
}
