import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { TokenBody, TokenParams, WorkspaceBody } from "../../protocol/auth.js";
import { requireAdmin } from "./authenticate.js";
import type { AuthStore } from "./store.js";

/** Workspaces (admin) and tokens of the caller's workspace (environments: environment-routes.ts). */
export async function authRoutes(fastify: FastifyInstance, opts: { store: AuthStore }) {
  const { store } = opts;
  // Schemas and handler types from one definition each (protocol/auth.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get("/v1/whoami", async (req) => {
    const ws = store.getWorkspace(req.caller.workspaceId);
    return { workspace: ws.name, workspaceId: ws.id, tokenId: req.caller.token.id, admin: req.caller.token.admin, environment: req.caller.environment };
  });

  app.post("/v1/workspaces", { schema: { body: WorkspaceBody } }, async (req) => {
    requireAdmin(req.caller);
    const ws = store.createWorkspace(req.body.name);
    const token = store.issueToken(ws.id, `${ws.name} owner`);
    return { workspace: ws, ...token };
  });

  app.post(
    "/v1/tokens",
    { schema: { body: TokenBody } },
    async (req) => store.issueToken(req.caller.workspaceId, req.body?.label ?? "", false, req.caller.token.id),
  );

  // An admin sees every token of its workspace; a plain token sees only itself.
  app.get("/v1/tokens", async (req) => ({ tokens: store.listTokens(req.caller.token) }));

  app.delete("/v1/tokens/:id", { schema: { params: TokenParams } }, async (req) => {
    store.revokeToken(req.caller.token, req.params.id);
    return { revoked: req.params.id };
  });

}
