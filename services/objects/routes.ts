import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import {
  CreateObjectBody,
  DeleteByNameQuery,
  EphemeralObjectBody,
  KindIdParams,
  KindNameParams,
  KindParams,
  ListObjectsQuery,
  LookupObjectBody,
  RenameObjectBody,
} from "../../protocol/objects.js";
import type { ObjectRecord, ObjectRegistry } from "./registry.js";

/** An object record as the API shows it. */
export const publicRecord = (r: ObjectRecord) => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  environment: r.environment,
  createdAt: r.createdAt,
  ephemeral: r.ephemeral,
  options: r.options,
});

/** The named-object operations every kind shares: create, look up, list, rename, delete, ephemeral lifetimes. */
export async function objectRoutes(fastify: FastifyInstance, opts: { registry: ObjectRegistry; heartbeatIntervalMs: number }) {
  const { registry, heartbeatIntervalMs } = opts;
  // Schemas and handler types from one definition each (protocol/objects.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.post("/v1/objects/:kind", { schema: { params: KindParams, body: CreateObjectBody } }, async (req) =>
    publicRecord(registry.create(req.caller, req.params.kind, req.body.name, req.body)),
  );

  app.post("/v1/objects/:kind/lookup", { schema: { params: KindParams, body: LookupObjectBody } }, async (req) =>
    publicRecord(registry.lookup(req.caller, req.params.kind, req.body.name, req.body)),
  );

  app.get("/v1/objects/:kind", { schema: { params: KindParams, querystring: ListObjectsQuery } }, async (req) => ({
    objects: registry.list(req.caller, req.params.kind, req.query).map(publicRecord),
  }));

  app.post("/v1/objects/:kind/rename", { schema: { params: KindParams, body: RenameObjectBody } }, async (req) =>
    publicRecord(registry.rename(req.caller, req.params.kind, req.body.name, req.body.newName)),
  );

  app.delete("/v1/objects/:kind/by-name/:name", { schema: { params: KindNameParams, querystring: DeleteByNameQuery } }, async (req) => {
    const existed = await registry.deleteByName(req.caller, req.params.kind, req.params.name, req.query);
    return { deleted: req.params.name, existed };
  });

  app.post("/v1/objects/:kind/ephemeral", { schema: { params: KindParams, body: EphemeralObjectBody } }, async (req) => ({
    ...publicRecord(registry.createEphemeral(req.caller, req.params.kind, req.body?.options)),
    heartbeatIntervalMs,
  }));

  app.get("/v1/objects/:kind/:id", { schema: { params: KindIdParams } }, async (req) => publicRecord(registry.get(req.caller, req.params.kind, req.params.id)));

  app.post("/v1/objects/:kind/:id/heartbeat", { schema: { params: KindIdParams } }, async (req) => {
    registry.heartbeat(req.caller, req.params.kind, req.params.id);
    return {};
  });

  app.delete("/v1/objects/:kind/:id", { schema: { params: KindIdParams } }, async (req) => {
    await registry.deleteById(req.caller, req.params.kind, req.params.id);
    return { deleted: req.params.id };
  });
}
