import type { FastifyInstance } from "fastify";
import type { VersionPin } from "../../protocol/volume.js";
import type { VolumeStore } from "./volume-store.js";

type PinParams = { id: string; pinId: string };
const versionBody = { type: "object", properties: { version: { type: "integer", minimum: 0 } } } as const;

/**
 * Version pins of a volume: create (the latest version unless one is given), renew or move,
 * delete. Creating or moving a pin to a version GC already dropped fails with VERSION_GONE.
 */
export async function pinRoutes(app: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;

  // The store checks the version and writes the pin in one atomic step, so no GC pass advances in between.
  app.post<{ Params: { id: string }; Body: { version?: number } | undefined }>(
    "/v1/volumes/:id/pins",
    { schema: { body: versionBody } },
    async (req): Promise<VersionPin> => {
      return volumes.pin(await volumes.open(req.caller, req.params.id), req.body?.version);
    },
  );

  app.put<{ Params: PinParams; Body: { version?: number } | undefined }>(
    "/v1/volumes/:id/pins/:pinId",
    { schema: { body: versionBody } },
    async (req): Promise<VersionPin> => {
      return volumes.renewPin(await volumes.open(req.caller, req.params.id), req.params.pinId, req.body?.version);
    },
  );

  app.get<{ Params: { id: string } }>("/v1/volumes/:id/pins", async (req) => {
    return { pins: await volumes.pins(await volumes.open(req.caller, req.params.id)) };
  });

  app.delete<{ Params: PinParams }>("/v1/volumes/:id/pins/:pinId", async (req) => {
    await volumes.unpin(await volumes.open(req.caller, req.params.id), req.params.pinId);
    return {};
  });
}
