import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/** Where `npm run build` puts the dashboard (vite, ui/): dist/ui, beside dist/services. */
const DASHBOARD_DIR = fileURLToPath(new URL("../../ui/", import.meta.url));

/**
 * The web dashboard at `/ui`: static files only, served without a token (they hold no data).
 * The page signs in with a token and calls the same `/v1` API as every client.
 */
export async function dashboardPlugin(app: FastifyInstance): Promise<void> {
  app.addHook("onRoute", (route) => {
    route.config = { ...(route.config ?? {}), public: true };
  });
  // A person who opens the server's address in a browser lands on the dashboard, not a 401.
  app.get("/", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/ui/"));
  if (!existsSync(DASHBOARD_DIR)) {
    app.get("/ui", { schema: { hide: true } }, async (_req, reply) =>
      reply.status(404).type("text/plain").send("The dashboard is not built: run 'npm run build' (it builds ui/ into dist/ui).\n"),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: "/ui/",
    decorateReply: false,
    // Hashed asset names change with each build; index.html must not be cached long.
    cacheControl: false,
    setHeaders: (res, path) => {
      res.header("cache-control", path.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      res.header("x-content-type-options", "nosniff");
      // Only this server's own scripts, and no framing: the page holds a token and has buttons that delete.
      res.header("content-security-policy", "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'");
      res.header("x-frame-options", "DENY");
    },
  });
  // `/ui` → `/ui/`, so the page's relative asset URLs resolve.
  app.get("/ui", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/ui/"));
}
