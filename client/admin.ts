import type { EnvironmentOption } from "./object-service.js";
import type { Transport } from "./transport.js";
import { checkName } from "../protocol/names.js";
import type { IssuedToken, TokenInfo } from "../protocol/objects.js";

export type { IssuedToken, TokenInfo };

export interface WorkspaceCreated extends IssuedToken {
  workspace: { id: string; name: string; createdAt: number };
}

export interface WhoAmI {
  workspace: string;
  workspaceId: string;
  tokenId: string;
  admin: boolean;
  environment: string;
}

/** Workspaces: isolated tenants. Creating one needs an admin token. */
export class WorkspaceService {
  constructor(private readonly transport: Transport) {}

  /** Creates a workspace and returns a token for it (its secret is shown only here). */
  async create(name: string): Promise<WorkspaceCreated> {
    checkName(name, "workspace name");
    return this.transport.rpc("POST", "/v1/workspaces", { name });
  }
}

/** API tokens of the caller's workspace. */
export class TokenService {
  constructor(private readonly transport: Transport) {}

  create(opts: { label?: string } = {}): Promise<IssuedToken> {
    return this.transport.rpc("POST", "/v1/tokens", { label: opts.label ?? "" });
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.transport.rpc<{ tokens: TokenInfo[] }>("GET", "/v1/tokens")).tokens;
  }

  async revoke(tokenId: string): Promise<void> {
    await this.transport.rpc("DELETE", `/v1/tokens/${encodeURIComponent(tokenId)}`);
  }
}

/** Environments: namespaces inside a workspace (`main` always exists). */
export class EnvironmentService {
  constructor(private readonly transport: Transport) {}

  async create(name: string): Promise<void> {
    checkName(name, "environment name");
    await this.transport.rpc("POST", "/v1/environments", { name });
  }

  async list(): Promise<Array<{ name: string; createdAt: number }>> {
    return (await this.transport.rpc<{ environments: Array<{ name: string; createdAt: number }> }>("GET", "/v1/environments")).environments;
  }

  /** Renames an environment; its objects move with it (jobs still using the old name get NotFoundError). */
  async rename(name: string, newName: string): Promise<void> {
    checkName(name, "environment name");
    checkName(newName, "environment name");
    await this.transport.rpc("POST", `/v1/environments/${encodeURIComponent(name)}/rename`, { newName });
  }

  /**
   * Deletes an environment. ConflictError while it holds objects, unless `force`, which deletes
   * them and their data too (irreversible). Returns how many objects were deleted.
   */
  async delete(name: string, opts: { force?: boolean } = {}): Promise<{ objectsDeleted: number }> {
    checkName(name, "environment name");
    const res = await this.transport.rpc<{ objectsDeleted: number }>("DELETE", `/v1/environments/${encodeURIComponent(name)}`, undefined, {
      query: { force: opts.force ?? false },
    });
    return { objectsDeleted: res.objectsDeleted };
  }
}

export async function whoami(transport: Transport, opts: EnvironmentOption = {}): Promise<WhoAmI> {
  return transport.rpc("GET", "/v1/whoami", undefined, opts);
}
