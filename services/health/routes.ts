import type { FastifyInstance } from "fastify";
import type { Readiness } from "./readiness.js";

const checkSchema = {
  type: "object",
  properties: {
    name: { type: "string", description: "What was checked: serving, disk, or a store (meta, kv, volumes)" },
    ok: { type: "boolean", description: "Whether it passed" },
    detail: { type: "string", description: "Why it failed, or the reading (free bytes)" },
  },
} as const;
const readySchema = {
  type: "object",
  properties: {
    status: { type: "string", enum: ["ready", "not ready"], description: "`ready` when every check passed" },
    checks: { type: "array", items: checkSchema, description: "Every check with its outcome" },
  },
} as const;

/** `/healthz` and `/readyz`: no token, for load balancers and orchestrators. */
export async function healthRoutes(app: FastifyInstance, opts: { readiness: Readiness }): Promise<void> {
  app.get(
    "/healthz",
    {
      config: { public: true },
      schema: {
        tags: ["operations"],
        summary: "Liveness: the process answers",
        description: "Answers 200 while the server's event loop runs, whatever the state of its stores. No token needed.",
        response: {
          200: { type: "object", properties: { status: { type: "string", enum: ["ok"], description: "Always `ok`" } } },
        },
      },
    },
    async () => ({ status: "ok" }),
  );
  app.get(
    "/readyz",
    {
      config: { public: true },
      schema: {
        tags: ["operations"],
        summary: "Readiness: stores open and disk not full",
        description:
          "Answers 200 when every store answers, the home's file system has at least `--ready-min-free-bytes` free, " +
          "and the server is not shutting down; 503 otherwise, with the failed checks. No token needed.",
        response: { 200: readySchema, 503: readySchema },
      },
    },
    async (_req, reply) => {
      const report = await opts.readiness.report();
      return reply.status(report.ready ? 200 : 503).send({ status: report.ready ? "ready" : "not ready", checks: report.checks });
    },
  );
}
