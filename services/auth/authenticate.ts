import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { siloError } from "../errors.js";
import { type AuthStore, DEFAULT_ENVIRONMENT, type TokenInfo } from "./store.js";

/** Who is calling, and in which namespace: every object lookup is confined to it. */
export interface Caller {
  token: TokenInfo;
  workspaceId: string;
  environment: string;
}

declare module "fastify" {
  interface FastifyRequest {
    caller: Caller;
  }
  interface FastifyContextConfig {
    /** Served without a token: health checks, the API description and the dashboard's static files. */
    public?: boolean;
  }
}

export const ENVIRONMENT_HEADER = "x-silo-environment";

const authError = () => siloError("AUTH", "Missing, unknown or revoked token");

/** Authenticates every request: `Authorization: Bearer <token-id>:<token-secret>`. */
export const authenticatePlugin = fp(async (app: FastifyInstance, opts: { store: AuthStore }) => {
  const { store } = opts;
  app.decorateRequest("caller", null as unknown as Caller);
  app.addHook("onRequest", async (req: FastifyRequest) => {
    if (req.routeOptions.config.public === true) return;
    const header = req.headers.authorization ?? "";
    const match = /^Bearer (\S+)$/.exec(header);
    const envHeader = req.headers[ENVIRONMENT_HEADER];
    req.caller = callerOf(store, match?.[1], Array.isArray(envHeader) ? envHeader[0] : envHeader);
  });
});

/**
 * The caller a `<token-id>:<token-secret>` credential and an environment name (absent: the
 * default) stand for; AUTH for a missing, unknown or revoked token, NOT_FOUND for an unknown
 * environment. Every way in (HTTP, the local block socket) authenticates through this.
 */
export function callerOf(store: AuthStore, credential: string | undefined, environmentName: string | undefined): Caller {
  const match = /^([^:\s]+):(\S+)$/.exec(credential ?? "");
  const token = match ? store.verify(match[1]!, match[2]!) : undefined;
  if (!token) throw authError();
  const environment = environmentName || DEFAULT_ENVIRONMENT;
  if (environment !== DEFAULT_ENVIRONMENT && !store.hasEnvironment(token.workspaceId, environment)) {
    throw siloError("NOT_FOUND", `Environment '${environment}' not found (create it with 'silo environment create ${environment}')`);
  }
  return { token, workspaceId: token.workspaceId, environment };
}

export function requireAdmin(caller: Caller): void {
  if (!caller.token.admin) throw siloError("FORBIDDEN", "This operation needs an admin token");
}
