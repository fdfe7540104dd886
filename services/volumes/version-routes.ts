import type { FastifyInstance } from "fastify";
import type { HistoryPage, RestoreResult } from "../../protocol/volume.js";
import { publicRecord } from "../objects/routes.js";
import type { VolumeStore } from "./volume-store.js";

type IdParams = { id: string };

/** Versions as a user feature: list what each version changed and who committed it, restore a path or the volume, fork a version into a new volume. */
export async function versionRoutes(app: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;

  app.get<{ Params: IdParams; Querystring: { path?: string; before?: number; limit?: number } }>(
    "/v1/volumes/:id/history",
    {
      schema: {
        querystring: {
          type: "object",
          properties: {
            path: { type: "string" },
            before: { type: "integer", minimum: 0 },
            limit: { type: "integer", minimum: 1, maximum: 1000 },
          },
        },
      },
    },
    async (req): Promise<HistoryPage> => volumes.history(await volumes.open(req.caller, req.params.id), req.query),
  );

  app.post<{ Params: IdParams; Body: { version: number; path?: string } }>(
    "/v1/volumes/:id/restore",
    {
      schema: {
        body: {
          type: "object",
          required: ["version"],
          properties: { version: { type: "integer", minimum: 0 }, path: { type: "string" } },
        },
      },
    },
    async (req): Promise<RestoreResult> => volumes.restore(await volumes.open(req.caller, req.params.id), req.caller, req.body.version, req.body.path),
  );

  app.post<{ Params: IdParams; Body: { name: string; version?: number } }>(
    "/v1/volumes/:id/fork",
    {
      schema: {
        body: {
          type: "object",
          required: ["name"],
          properties: { name: { type: "string" }, version: { type: "integer", minimum: 0 } },
        },
      },
    },
    async (req) => publicRecord(await volumes.fork(await volumes.open(req.caller, req.params.id), req.caller, req.body.name, req.body.version)),
  );
}
