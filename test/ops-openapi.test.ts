import { describe, expect, it } from "vitest";
import { ROUTE_DOCS } from "../services/http/route-docs.js";
import { type OpenApi, openapiProblems } from "./helpers/openapi-problems.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const fx = siloServerFixture();

async function openapi(): Promise<OpenApi> {
  const res = await fetch(`${fx.server.url}/openapi.json`);
  expect(res.status).toBe(200);
  return (await res.json()) as OpenApi;
}

describe("OpenAPI", () => {
  it("is served at /openapi.json without a token, with every silo route", async () => {
    const doc = await openapi();
    const ops = Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.keys(byMethod).map((m) => `${m.toUpperCase()} ${path}`));
    expect(ops.length).toBeGreaterThanOrEqual(50);
    for (const must of ["GET /healthz", "GET /readyz", "GET /metrics", "POST /v1/queues/{id}/get", "POST /v1/volumes/{id}/commit"]) {
      expect(ops).toContain(must);
    }
  });

  it("every route has a summary, a description, described fields and its error codes", async () => {
    // test/unit/openapi-completeness.test.ts shows this check catches each kind of gap.
    expect(openapiProblems(await openapi())).toEqual([]);
  });

  it("documents no route that does not exist (the reference table has no stale entries)", async () => {
    const doc = await openapi();
    const served = new Set(
      Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.keys(byMethod).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`)),
    );
    expect(Object.keys(ROUTE_DOCS).filter((k) => !served.has(k))).toEqual([]);
  });

  it("lists a route's error statuses with their codes", async () => {
    const doc = await openapi();
    const get = doc.paths["/v1/queues/{id}/get"]!.post!;
    expect(get.responses["408"]?.description).toMatch(/QUEUE_EMPTY/);
    expect(get.responses["404"]?.description).toMatch(/NOT_FOUND/);
    const commit = doc.paths["/v1/volumes/{id}/commit"]!.post!;
    expect(commit.responses["409"]?.description).toMatch(/CONFLICT.*VOLUME_BUSY|VOLUME_BUSY.*CONFLICT/);
  });

  it("/docs serves a browsable UI from the server itself, without a token", async () => {
    const res = await fetch(`${fx.server.url}/docs`, { redirect: "follow" });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toMatch(/swagger-ui/i);
    // No CDN: every script and stylesheet comes from this server.
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((r) => /^(https?:)?\/\//.test(r))).toEqual([]);
    const base = new URL(res.url);
    for (const ref of refs.filter((r) => r.endsWith(".js") || r.endsWith(".css"))) {
      const asset = await fetch(new URL(ref, base));
      expect(asset.status, ref).toBe(200);
    }
  });

  it("still guards the data routes", async () => {
    expect((await fetch(`${fx.server.url}/v1/whoami`)).status).toBe(401);
    expect((await fetch(`${fx.server.url}/v1/objects/dict`)).status).toBe(401);
  });
});
