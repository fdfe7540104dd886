import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { openapiPlugin } from "../../services/http/openapi.js";
import { type OpenApi, openapiProblems } from "../helpers/openapi-problems.js";

/**
 * The check test/ops-openapi.test.ts runs over the served reference catches every kind of gap:
 * routes registered here beside documented ones, through the server's own OpenAPI plugin.
 */
async function referenceOf(register: (app: ReturnType<typeof Fastify>) => void): Promise<OpenApi> {
  const app = Fastify();
  // As services/app.ts does: the plugin on the root, the routes after it.
  await openapiPlugin(app);
  await app.after();
  register(app);
  await app.ready();
  const doc = (app as unknown as { swagger(): OpenApi }).swagger();
  await app.close();
  return doc;
}

const ok = async () => ({});

describe("the OpenAPI completeness check", () => {
  it("passes a documented route whose every field is described", async () => {
    const doc = await referenceOf((app) => {
      // In the reference table (route-docs.ts), with the same fields as the real route.
      app.get(
        "/v1/volumes/:id/history",
        { schema: { querystring: { type: "object", properties: { path: { type: "string" }, before: { type: "integer" }, limit: { type: "integer" } } } } },
        ok,
      );
    });
    expect(openapiProblems(doc)).toEqual([]);
  });

  it("fails a documented route that gains an undescribed query, path or body field", async () => {
    const doc = await referenceOf((app) => {
      app.get(
        "/v1/volumes/:id/history",
        { schema: { querystring: { type: "object", properties: { path: { type: "string" }, colour: { type: "string" } } } } },
        ok,
      );
      app.post(
        "/v1/volumes/:id/fork",
        { schema: { params: { type: "object", properties: { id: { type: "string" }, shard: { type: "string" } } }, body: { type: "object", properties: { name: { type: "string" }, flavour: { type: "string" } } } } },
        ok,
      );
    });
    expect(openapiProblems(doc).sort()).toEqual([
      "GET /v1/volumes/{id}/history: query field 'colour' has no description",
      "POST /v1/volumes/{id}/fork: body field 'flavour' has no description",
      "POST /v1/volumes/{id}/fork: path field 'shard' has no description",
    ]);
  });

  it("fails a route missing from the reference table: no summary, no description, no error codes", async () => {
    const doc = await referenceOf((app) => {
      app.put("/v1/gadgets/:gadget", { schema: { querystring: { type: "object", properties: { dry: { type: "boolean" } } } } }, ok);
    });
    const problems = openapiProblems(doc);
    for (const gap of [
      "no summary",
      "no description",
      "path field 'gadget' has no description",
      "query field 'dry' has no description",
      "401 AUTH not documented",
      "500 not documented",
      "no security requirement",
    ]) {
      expect(problems).toContain(`PUT /v1/gadgets/{gadget}: ${gap}`);
    }
  });
});
