import type { FastifyInstance } from "fastify";
import { NAME_PATTERN } from "../../protocol/names.js";
import { requireAdmin } from "./authenticate.js";
import type { AuthStore } from "./store.js";

const nameBody = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string" } },
} as const;

/** Workspaces (admin), tokens and environments of the caller's workspace. */
export async function authRoutes(app: FastifyInstance, opts: { store: AuthStore }) {
  const { store } = opts;

  app.get("/v1/whoami", async (req) => {
    const ws = store.getWorkspace(req.caller.workspaceId);
    return { workspace: ws.name, workspaceId: ws.id, tokenId: req.caller.token.id, admin: req.caller.token.admin, environment: req.caller.environment };
  });

  app.post<{ Body: { name: string } }>("/v1/workspaces", { schema: { body: nameBody } }, async (req) => {
    requireAdmin(req.caller);
    const ws = store.createWorkspace(req.body.name);
    const token = store.issueToken(ws.id, `${ws.name} owner`);
    return { workspace: ws, ...token };
  });

  app.post<{ Body: { label?: string } }>(
    "/v1/tokens",
    { schema: { body: { type: "object", properties: { label: { type: "string", maxLength: 200 } } } } },
    async (req) => store.issueToken(req.caller.workspaceId, req.body?.label ?? "", false, req.caller.token.id),
  );

  // An admin sees every token of its workspace; a plain token sees only itself.
  app.get("/v1/tokens", async (req) => ({ tokens: store.listTokens(req.caller.token) }));

  app.delete<{ Params: { id: string } }>("/v1/tokens/:id", async (req) => {
    store.revokeToken(req.caller.token, req.params.id);
    return { revoked: req.params.id };
  });

  app.post<{ Body: { name: string } }>(
    "/v1/environments",
    { schema: { body: { ...nameBody, properties: { name: { type: "string", pattern: NAME_PATTERN } } } } },
    async (req) => {
      store.createEnvironment(req.caller.workspaceId, req.body.name);
      return { name: req.body.name };
    },
  );

  app.get("/v1/environments", async (req) => ({ environments: store.listEnvironments(req.caller.workspaceId) }));
}
