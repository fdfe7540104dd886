import type { FastifyInstance } from "fastify";
import { requireAdmin } from "./authenticate.js";
import type { AuthStore } from "./store.js";

const nameBody = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string" } },
} as const;

/** Workspaces (admin) and tokens of the caller's workspace (environments: environment-routes.ts). */
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
    async (req) => store.issueToken(req.caller.workspaceId, req.body?.label ?? ""),
  );

  app.get("/v1/tokens", async (req) => ({ tokens: store.listTokens(req.caller.workspaceId) }));

  app.delete<{ Params: { id: string } }>("/v1/tokens/:id", async (req) => {
    store.revokeToken(req.caller.workspaceId, req.params.id);
    return { revoked: req.params.id };
  });

}
