import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { Counter, Histogram, type Registry } from "prom-client";

/** Request latency buckets (seconds): from a cached dict read to a long-poll at its 50 s cap. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Counts every answered request by route pattern (not raw URL: ids would explode the label set)
 * and status, with its latency, and the requests refused for their token.
 */
export const httpMetricsPlugin = fp(async (app: FastifyInstance, opts: { registry: Registry }) => {
  const requests = new Counter({
    name: "silo_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [opts.registry],
  });
  const duration = new Histogram({
    name: "silo_http_request_duration_seconds",
    help: "Time from request received to response sent, by method and route pattern",
    labelNames: ["method", "route"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [opts.registry],
  });
  const authFailures = new Counter({
    name: "silo_auth_failures_total",
    help: "Requests refused with 401 (missing, unknown, wrong or revoked token)",
    registers: [opts.registry],
  });
  app.addHook("onResponse", async (req, reply) => {
    // Unmatched URLs share one label: a scanner probing random paths must not grow the series.
    const route = req.routeOptions.url ?? "unmatched";
    const status = String(reply.statusCode);
    requests.inc({ method: req.method, route, status });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    if (reply.statusCode === 401) authFailures.inc();
  });
});
