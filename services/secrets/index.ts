import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyPluginAsync } from "fastify";
import { CreateSecretBody, PutSecretValuesBody, SecretParams } from "../../protocol/secrets.js";
import type { KindContext } from "../context.js";
import { loadMasterKey } from "./master-key.js";
import { SecretStore } from "./store.js";

/** Secrets: named key/value sets, encrypted at rest, readable only inside their workspace and environment. */
export const secretsPlugin: FastifyPluginAsync<KindContext> = async (fastify, ctx) => {
  // Schemas and handler types from one definition each (protocol/secrets.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const store = new SecretStore(ctx.meta, loadMasterKey(ctx.dataDir));
  ctx.registry.registerKind("secret", { prefix: "st", purge: (record) => store.delete(record.id) });

  app.post(
    "/v1/secrets",
    { schema: { body: CreateSecretBody } },
    async (req) => {
      const record = ctx.meta.transaction(() => {
        const rec = ctx.registry.create(req.caller, "secret", req.body.name, { allowExisting: req.body.overwrite ?? false });
        store.put(rec.id, req.body.values);
        return rec;
      })();
      return { id: record.id, name: record.name, workspaceId: record.workspaceId, environment: record.environment, createdAt: record.createdAt, keys: store.keys(record.id) };
    },
  );

  app.put(
    "/v1/secrets/:id/values",
    { schema: { params: SecretParams, body: PutSecretValuesBody } },
    async (req) => {
      const record = ctx.registry.get(req.caller, "secret", req.params.id);
      store.put(record.id, req.body.values);
      return { keys: store.keys(record.id) };
    },
  );

  app.get("/v1/secrets/:id/keys", { schema: { params: SecretParams } }, async (req) => {
    const record = ctx.registry.get(req.caller, "secret", req.params.id);
    return { keys: store.keys(record.id) };
  });

  /** The decrypted values, for a job or mount of the same workspace and environment. */
  app.get("/v1/secrets/:id/values", { schema: { params: SecretParams } }, async (req, reply) => {
    const record = ctx.registry.get(req.caller, "secret", req.params.id);
    reply.header("cache-control", "no-store");
    return { values: store.get(record.id) };
  });
};
