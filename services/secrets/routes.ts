import type { FastifyPluginAsync } from "fastify";
import type { KindContext } from "../context.js";
import { loadMasterKey } from "./master-key.js";
import { type SecretValues, SecretStore } from "./store.js";

/** Environment-variable-like keys: what jobs and mounts read them as. */
const KEY_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";
const valuesSchema = {
  type: "object",
  minProperties: 1,
  maxProperties: 200,
  propertyNames: { pattern: KEY_PATTERN },
  additionalProperties: { type: "string", maxLength: 65536 },
} as const;

/** Secrets: named key/value sets, encrypted at rest, readable only inside their workspace and environment. */
export const secretsKind: FastifyPluginAsync<KindContext> = async (app, ctx) => {
  const store = new SecretStore(ctx.meta, loadMasterKey(ctx.dataDir));
  ctx.registry.registerKind("secret", { prefix: "st", purge: (record) => store.delete(record.id) });

  app.post<{ Body: { name: string; values: SecretValues; overwrite?: boolean } }>(
    "/v1/secrets",
    {
      schema: {
        body: {
          type: "object",
          required: ["name", "values"],
          properties: { name: { type: "string" }, values: valuesSchema, overwrite: { type: "boolean" } },
        },
      },
    },
    async (req) => {
      const record = ctx.meta.transaction(() => {
        const rec = ctx.registry.create(req.caller, "secret", req.body.name, { allowExisting: req.body.overwrite ?? false });
        store.put(rec.id, req.body.values);
        return rec;
      })();
      return { id: record.id, name: record.name, workspaceId: record.workspaceId, environment: record.environment, createdAt: record.createdAt, keys: store.keys(record.id) };
    },
  );

  app.put<{ Params: { id: string }; Body: { values: SecretValues } }>(
    "/v1/secrets/:id/values",
    { schema: { body: { type: "object", required: ["values"], properties: { values: valuesSchema } } } },
    async (req) => {
      const record = ctx.registry.get(req.caller, "secret", req.params.id);
      store.put(record.id, req.body.values);
      return { keys: store.keys(record.id) };
    },
  );

  app.get<{ Params: { id: string } }>("/v1/secrets/:id/keys", async (req) => {
    const record = ctx.registry.get(req.caller, "secret", req.params.id);
    return { keys: store.keys(record.id) };
  });

  /** The decrypted values, for a job or mount of the same workspace and environment. */
  app.get<{ Params: { id: string } }>("/v1/secrets/:id/values", async (req, reply) => {
    const record = ctx.registry.get(req.caller, "secret", req.params.id);
    reply.header("cache-control", "no-store");
    return { values: store.get(record.id) };
  });
};
