import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import type { VersionPin } from "../../protocol/volume.js";
import { PinBody, PinParams, VolumeIdParams } from "../../protocol/volume-routes.js";
import type { VolumeStore } from "./volume-store.js";

/**
 * Version pins of a volume: create (the latest version unless one is given), renew or move,
 * delete. Creating or moving a pin to a version GC already dropped fails with VERSION_GONE.
 */
export async function pinRoutes(fastify: FastifyInstance, opts: { volumes: VolumeStore }) {
  const { volumes } = opts;
  // Schemas and handler types from one definition each (protocol/volume-routes.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // The body may be absent altogether (then it is not validated): the latest version.
  type MaybeBody = { body: { version?: number } | undefined };

  // The store checks the version and writes the pin in one atomic step, so no GC pass advances in between.
  app.post("/v1/volumes/:id/pins", { schema: { params: VolumeIdParams, body: PinBody } }, async (req): Promise<VersionPin> => {
    return volumes.pin(await volumes.open(req.caller, req.params.id), (req as MaybeBody).body?.version);
  });

  app.put("/v1/volumes/:id/pins/:pinId", { schema: { params: PinParams, body: PinBody } }, async (req): Promise<VersionPin> => {
    return volumes.renewPin(await volumes.open(req.caller, req.params.id), req.params.pinId, (req as MaybeBody).body?.version);
  });

  app.get("/v1/volumes/:id/pins", { schema: { params: VolumeIdParams } }, async (req) => {
    return { pins: await volumes.pins(await volumes.open(req.caller, req.params.id)) };
  });

  app.delete("/v1/volumes/:id/pins/:pinId", { schema: { params: PinParams } }, async (req) => {
    await volumes.unpin(await volumes.open(req.caller, req.params.id), req.params.pinId);
    return {};
  });
}
