import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { requireAdmin } from "../auth/authenticate.js";

/** `GET /metrics` on the API listener: Prometheus text, for admin tokens only (it spans every workspace). */
export async function metricsRoutes(app: FastifyInstance, opts: { registry: Registry }): Promise<void> {
  app.get(
    "/metrics",
    {
      schema: {
        tags: ["operations"],
        summary: "Prometheus metrics",
        description:
          "Server metrics in the Prometheus text format (requests, objects, queue depth, volume storage, GC, process). " +
          "Needs an admin token; or run `silo serve --metrics-listen HOST:PORT` for a listener that serves only this, without a token.",
        produces: ["text/plain"],
      },
    },
    async (req, reply) => {
      requireAdmin(req.caller);
      const text = await opts.registry.metrics();
      return reply.type(opts.registry.contentType).send(text);
    },
  );
}
