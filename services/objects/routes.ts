import type { FastifyInstance } from "fastify";
import type { ObjectRecord, ObjectRegistry } from "./registry.js";

type KindParams = { kind: string };

const publicRecord = (r: ObjectRecord) => ({
  id: r.id,
  kind: r.kind,
  name: r.name,
  environment: r.environment,
  createdAt: r.createdAt,
  ephemeral: r.ephemeral,
  options: r.options,
});

const optionsSchema = { type: "object", additionalProperties: true } as const;

/** The named-object operations every kind shares: create, look up, list, rename, delete, ephemeral lifetimes. */
export async function objectRoutes(app: FastifyInstance, opts: { registry: ObjectRegistry; heartbeatIntervalMs: number }) {
  const { registry, heartbeatIntervalMs } = opts;

  app.post<{ Params: KindParams; Body: { name: string; allowExisting?: boolean; options?: Record<string, unknown> } }>(
    "/v1/objects/:kind",
    {
      schema: {
        body: {
          type: "object",
          required: ["name"],
          properties: { name: { type: "string" }, allowExisting: { type: "boolean" }, options: optionsSchema },
        },
      },
    },
    async (req) => publicRecord(registry.create(req.caller, req.params.kind, req.body.name, req.body)),
  );

  app.post<{ Params: KindParams; Body: { name: string; createIfMissing?: boolean; options?: Record<string, unknown> } }>(
    "/v1/objects/:kind/lookup",
    {
      schema: {
        body: {
          type: "object",
          required: ["name"],
          properties: { name: { type: "string" }, createIfMissing: { type: "boolean" }, options: optionsSchema },
        },
      },
    },
    async (req) => publicRecord(registry.lookup(req.caller, req.params.kind, req.body.name, req.body)),
  );

  app.get<{ Params: KindParams; Querystring: { maxObjects?: number; createdBefore?: number } }>(
    "/v1/objects/:kind",
    {
      schema: {
        querystring: {
          type: "object",
          properties: { maxObjects: { type: "integer", minimum: 0 }, createdBefore: { type: "integer" } },
        },
      },
    },
    async (req) => ({ objects: registry.list(req.caller, req.params.kind, req.query).map(publicRecord) }),
  );

  app.post<{ Params: KindParams; Body: { name: string; newName: string } }>(
    "/v1/objects/:kind/rename",
    {
      schema: {
        body: {
          type: "object",
          required: ["name", "newName"],
          properties: { name: { type: "string" }, newName: { type: "string" } },
        },
      },
    },
    async (req) => publicRecord(registry.rename(req.caller, req.params.kind, req.body.name, req.body.newName)),
  );

  app.delete<{ Params: KindParams & { name: string }; Querystring: { allowMissing?: boolean } }>(
    "/v1/objects/:kind/by-name/:name",
    { schema: { querystring: { type: "object", properties: { allowMissing: { type: "boolean" } } } } },
    async (req) => {
      const existed = await registry.deleteByName(req.caller, req.params.kind, req.params.name, req.query);
      return { deleted: req.params.name, existed };
    },
  );

  app.post<{ Params: KindParams; Body: { options?: Record<string, unknown> } }>(
    "/v1/objects/:kind/ephemeral",
    { schema: { body: { type: "object", properties: { options: optionsSchema } } } },
    async (req) => ({
      ...publicRecord(registry.createEphemeral(req.caller, req.params.kind, req.body?.options)),
      heartbeatIntervalMs,
    }),
  );

  app.get<{ Params: KindParams & { id: string } }>("/v1/objects/:kind/:id", async (req) =>
    publicRecord(registry.get(req.caller, req.params.kind, req.params.id)),
  );

  app.post<{ Params: KindParams & { id: string } }>("/v1/objects/:kind/:id/heartbeat", async (req) => {
    registry.heartbeat(req.caller, req.params.kind, req.params.id);
    return {};
  });

  app.delete<{ Params: KindParams & { id: string } }>("/v1/objects/:kind/:id", async (req) => {
    await registry.deleteById(req.caller, req.params.kind, req.params.id);
    return { deleted: req.params.id };
  });
}
