import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance, FastifySchema } from "fastify";
import { COMMON_FIELDS, ERROR_MEANINGS, ROUTE_DOCS, errorResponses, routeDocKey } from "./route-docs.js";

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** A copy of an object schema whose top-level properties each carry a description (the route's own first). */
function describeFields(schema: unknown, fields: Record<string, string>): unknown {
  if (!isObject(schema) || !isObject(schema.properties)) return schema;
  const properties: JsonObject = {};
  for (const [name, prop] of Object.entries(schema.properties)) {
    const description = isObject(prop) && typeof prop.description === "string" ? prop.description : (fields[name] ?? COMMON_FIELDS[name]);
    properties[name] = isObject(prop) && description !== undefined ? { ...prop, description } : prop;
  }
  return { ...schema, properties };
}

/** The route's path parameters as a schema, for routes that do not state one (fastify takes them from the URL). */
function pathParams(url: string): JsonObject | undefined {
  const names = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  if (names.length === 0) return undefined;
  return { type: "object", required: names, properties: Object.fromEntries(names.map((n) => [n, { type: "string" }])) };
}

/** The reference's section of a /v1 route: its kind, or the account routes together. */
function tagOf(url: string): string {
  const first = url.split("/")[2] ?? "";
  return ["whoami", "workspaces", "tokens", "environments"].includes(first) ? "account" : first;
}

/** Adds each route's summary, description, field descriptions and error responses to its documentation only. */
function documentRoute({ schema, url, route }: { schema: FastifySchema; url: string; route: { method: string | string[] } }) {
  const method = Array.isArray(route.method) ? route.method[0]! : route.method;
  const doc = ROUTE_DOCS[routeDocKey(method, url)];
  if (!doc) return { schema, url };
  const own = (schema ?? {}) as JsonObject;
  const fields = doc.fields ?? {};
  const response: JsonObject = { ...(isObject(own.response) ? own.response : {}) };
  for (const [status, codes] of errorResponses(doc, url.startsWith("/v1/"))) {
    response[status] ??= {
      description: codes.map((c) => `${c}: ${ERROR_MEANINGS[c]}`).join("; "),
      type: "object",
      properties: {
        error: {
          type: "object",
          properties: {
            code: { type: "string", enum: codes, description: "Machine-readable error code" },
            message: { type: "string", description: "What went wrong, for people" },
          },
        },
      },
    };
  }
  const documented: JsonObject = {
    ...own,
    summary: typeof own.summary === "string" ? own.summary : doc.summary,
    description: typeof own.description === "string" ? own.description : doc.description,
    params: describeFields(own.params ?? pathParams(url), fields),
    querystring: describeFields(own.querystring, fields),
    body: describeFields(own.body, fields),
    response,
    ...(url.startsWith("/v1/") ? { security: [{ bearer: [] }], tags: Array.isArray(own.tags) ? own.tags : [tagOf(url)] } : {}),
  };
  for (const part of ["params", "querystring", "body"]) if (documented[part] === undefined) delete documented[part];
  return { schema: documented as FastifySchema, url };
}

/**
 * The API description at `/openapi.json` and a browsable UI at `/docs` (swagger-ui, served from
 * the package's own files: no CDN), both without a token: they hold no data.
 */
export async function openapiPlugin(app: FastifyInstance): Promise<void> {
  app.addHook("onRoute", (route) => {
    if (route.url === "/docs" || route.url.startsWith("/docs/")) route.config = { ...(route.config ?? {}), public: true };
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: "silo",
        version: "1",
        description:
          "Every `/v1` route needs `Authorization: Bearer <token-id>:<token-secret>` and takes and returns JSON or msgpack " +
          "(`application/msgpack`); `x-silo-environment` selects the environment (default `main`). Errors are " +
          "`{ error: { code, message } }` with the status of their code.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
    transform: documentRoute,
  });
  await app.register(swaggerUi, { routePrefix: "/docs", staticCSP: true });
  app.get("/openapi.json", { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
