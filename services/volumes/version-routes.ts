import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import type { HistoryPage, RestoreResult } from "../../protocol/volume.js";
import { ForkBody, HistoryQuery, RestoreBody, VolumeIdParams } from "../../protocol/volume-routes.js";
import { publicRecord } from "../objects/routes.js";
import type { VolumeStore } from "./volume-store.js";

/** Versions as a user feature: list what each version changed and who committed it, restore a path or the volume, fork a version into a new volume. */
export async function versionRoutes(fastify: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;
  // Schemas and handler types from one definition each (protocol/volume-routes.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/v1/volumes/:id/history",
    { schema: { params: VolumeIdParams, querystring: HistoryQuery } },
    async (req): Promise<HistoryPage> => volumes.history(await volumes.open(req.caller, req.params.id), req.query),
  );

  app.post(
    "/v1/volumes/:id/restore",
    { schema: { params: VolumeIdParams, body: RestoreBody } },
    async (req): Promise<RestoreResult> => volumes.restore(await volumes.open(req.caller, req.params.id), req.caller, req.body.version, req.body.path),
  );

  app.post(
    "/v1/volumes/:id/fork",
    { schema: { params: VolumeIdParams, body: ForkBody } },
    async (req) => publicRecord(await volumes.fork(await volumes.open(req.caller, req.params.id), req.caller, req.body.name, req.body.version)),
  );
}
