import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import type { Change } from "../../protocol/volume.js";
import { VOLUME_ROUTE_LIMITS } from "../../protocol/volume-limits.js";
import { CopyBody, DeltaQuery, LinksBody, RemoveBody, TreeQuery, VolumeIdParams } from "../../protocol/volume-routes.js";
import { CommitBody } from "../../protocol/volume-schemas.js";
import { invalid } from "../errors.js";
import { planCopy, planRemove } from "./file-ops.js";
import type { VolumeStore } from "./volume-store.js";

/** Versions, commits, deltas and trees: the API a mount (and the client's file helpers) build on. */
export async function manifestRoutes(fastify: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;
  // Schemas and handler types from one definition each (protocol/volume-routes.ts, volume-schemas.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get("/v1/volumes/:id/version", { schema: { params: VolumeIdParams } }, async (req) => ({
    version: (await volumes.open(req.caller, req.params.id)).st.latest,
  }));

  app.get("/v1/volumes/:id/info", { schema: { params: VolumeIdParams } }, async (req) => {
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

  app.post("/v1/volumes/:id/commit", { schema: { params: VolumeIdParams, body: CommitBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    if (req.body.baseVersion > vol.st.latest) throw invalid(`Base version ${req.body.baseVersion} is newer than the latest (${vol.st.latest})`);
    // The schema leaves block lists to the commit's own checks (checkEntry), so it types them loosely.
    return { version: await volumes.commit(vol, req.caller, req.body.changes as Change[], req.body.overwrite) };
  });

  app.get("/v1/volumes/:id/delta", { schema: { params: VolumeIdParams, querystring: DeltaQuery } }, async (req) => {
    const { st } = await volumes.open(req.caller, req.params.id);
    return volumes.store.delta(st.volume, req.query.from, req.query.to);
  });

  app.get("/v1/volumes/:id/tree", { schema: { params: VolumeIdParams, querystring: TreeQuery } }, async (req) => {
    const { st } = await volumes.open(req.caller, req.params.id);
    return volumes.store.tree(st.volume, req.query.version, req.query.after ?? "", req.query.limit ?? VOLUME_ROUTE_LIMITS.defaultPage);
  });

  // A mount that loads directories on demand finds a hard link's other names here (fuse/volume/lazy-load.ts).
  app.post("/v1/volumes/:id/links", { schema: { params: VolumeIdParams, body: LinksBody } }, async (req) => {
    const { st } = await volumes.open(req.caller, req.params.id);
    return volumes.store.linked(st.volume, req.body.version, req.body.linkIds);
  });

  app.post("/v1/volumes/:id/remove", { schema: { params: VolumeIdParams, body: RemoveBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    const changes = await planRemove(volumes.store, vol.st.volume, req.body.path, req.body.recursive ?? false);
    return { version: await volumes.commit(vol, req.caller, changes) };
  });

  app.post("/v1/volumes/:id/copy", { schema: { params: VolumeIdParams, body: CopyBody } }, async (req) => {
    const vol = await volumes.open(req.caller, req.params.id);
    const changes = await planCopy(volumes.store, vol.st.volume, req.body.srcPaths, req.body.dst, req.body.recursive ?? false, volumes.clock.now());
    return { version: await volumes.commit(vol, req.caller, changes, "files") };
  });
}
