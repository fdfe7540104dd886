import type { FastifyInstance } from "fastify";
import { NAME_PATTERN } from "../../protocol/names.js";
import type { Sqlite } from "../db.js";
import { siloError } from "../errors.js";
import type { ObjectRegistry } from "../objects/registry.js";
import type { AuthStore } from "./store.js";

const nameSchema = { type: "string", pattern: NAME_PATTERN } as const;

/**
 * Environments of the caller's workspace: create, list, rename, delete. They live beside the
 * auth tables, but renaming and deleting reach into every kind's objects, hence the registry.
 */
export async function environmentRoutes(app: FastifyInstance, opts: { store: AuthStore; registry: ObjectRegistry; meta: Sqlite }) {
  const { store, registry, meta } = opts;

  app.post<{ Body: { name: string } }>(
    "/v1/environments",
    { schema: { body: { type: "object", required: ["name"], properties: { name: nameSchema } } } },
    async (req) => {
      store.createEnvironment(req.caller.workspaceId, req.body.name);
      return { name: req.body.name };
    },
  );

  app.get("/v1/environments", async (req) => ({ environments: store.listEnvironments(req.caller.workspaceId) }));

  /** Renames an environment and moves its objects with it, in one transaction. */
  app.post<{ Params: { name: string }; Body: { newName: string } }>(
    "/v1/environments/:name/rename",
    { schema: { body: { type: "object", required: ["newName"], properties: { newName: nameSchema } } } },
    async (req) => {
      const ws = req.caller.workspaceId;
      meta.transaction(() => {
        store.renameEnvironment(ws, req.params.name, req.body.newName);
        registry.renameEnvironment(ws, req.params.name, req.body.newName);
      })();
      return { name: req.body.newName };
    },
  );

  /**
   * Deletes an environment. Refused (CONFLICT) while it holds objects unless `force`, which
   * deletes them (and all their data) too. The row goes first, so no request can create an
   * object in it meanwhile; objects created by requests already past authentication are
   * caught by deleting until none is left.
   */
  app.delete<{ Params: { name: string }; Querystring: { force?: boolean } }>(
    "/v1/environments/:name",
    { schema: { querystring: { type: "object", properties: { force: { type: "boolean" } } } } },
    async (req) => {
      const ws = req.caller.workspaceId;
      const name = req.params.name;
      meta.transaction(() => {
        const held = registry.inEnvironment(ws, name);
        if (held.length > 0 && !req.query.force) {
          const kinds = [...new Set(held.map((r) => r.kind))].sort().join(", ");
          throw siloError(
            "CONFLICT",
            `Environment '${name}' holds ${held.length} object${held.length === 1 ? "" : "s"} (${kinds}); delete them first, or pass force to delete them too`,
          );
        }
        store.deleteEnvironment(ws, name);
      })();
      let deleted = 0;
      for (let held = registry.inEnvironment(ws, name); held.length > 0; held = registry.inEnvironment(ws, name)) {
        for (const record of held) await registry.delete(record);
        deleted += held.length;
      }
      return { deleted: name, objectsDeleted: deleted };
    },
  );
}
