import type { FastifyInstance } from "fastify";
import type { VersionPin } from "../../protocol/volume.js";
import type { PinStore } from "./pin-store.js";
import type { VolumeStore } from "./volume-store.js";

type PinParams = { id: string; pinId: string };
const versionBody = { type: "object", properties: { version: { type: "integer", minimum: 0 } } } as const;

/**
 * Version pins of a volume: create (the latest version unless one is given), renew or move,
 * delete. Creating or moving a pin to a version GC already dropped fails with VERSION_GONE.
 */
export async function pinRoutes(app: FastifyInstance, opts: { volumes: VolumeStore; pins: PinStore }) {
  const { volumes, pins } = opts;

  // Each handler checks and writes in one synchronous step, so no GC pass advances in between.
  app.post<{ Params: { id: string }; Body: { version?: number } | undefined }>(
    "/v1/volumes/:id/pins",
    { schema: { body: versionBody } },
    async (req): Promise<VersionPin> => {
      const { st } = volumes.open(req.caller, req.params.id);
      const version = req.body?.version ?? st.latest;
      volumes.store.checkVersion(st, version);
      return pins.create(st.volume, version);
    },
  );

  app.put<{ Params: PinParams; Body: { version?: number } | undefined }>(
    "/v1/volumes/:id/pins/:pinId",
    { schema: { body: versionBody } },
    async (req): Promise<VersionPin> => {
      const { st } = volumes.open(req.caller, req.params.id);
      const version = req.body?.version;
      if (version !== undefined) volumes.store.checkVersion(st, version);
      return pins.renew(st.volume, req.params.pinId, version);
    },
  );

  app.get<{ Params: { id: string } }>("/v1/volumes/:id/pins", async (req) => {
    const { st } = volumes.open(req.caller, req.params.id);
    return { pins: pins.list(st.volume) };
  });

  app.delete<{ Params: PinParams }>("/v1/volumes/:id/pins/:pinId", async (req) => {
    const { st } = volumes.open(req.caller, req.params.id);
    pins.delete(st.volume, req.params.pinId);
    return {};
  });
}
