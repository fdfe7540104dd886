import { createRequire } from "node:module";
import type { Agent as UndiciAgent, Dispatcher } from "undici";

/*
 * undici's Agent and its request call, loaded without the rest of the package: `import "undici"`
 * also loads fetch, WebSocket, caches, mocks, proxies and cookies, ~0.15 CPU-s at every start of
 * the CLI, a mount daemon or a client (docs/benchmarks.md). These are paths inside undici 7's
 * lib/ (package.json pins the exact version, so an upgrade is a deliberate step that re-checks them);
 * a move there fails every start, not silently.
 */
const load = createRequire(import.meta.url);

/** undici's Agent: a pool of keep-alive connections per origin. */
export const Agent = load("undici/lib/dispatcher/agent.js") as typeof UndiciAgent;
export type Agent = UndiciAgent;

const dispatchRequest = load("undici/lib/api/api-request.js") as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

/** What undici's `request(url, { dispatcher, ...opts })` does: one request to `url` through `dispatcher`. */
export function request(dispatcher: Dispatcher, url: string, opts: Omit<Dispatcher.RequestOptions, "origin" | "path">): Promise<Dispatcher.ResponseData> {
  const u = new URL(url);
  return dispatchRequest.call(dispatcher, { ...opts, origin: u.origin, path: `${u.pathname}${u.search}` });
}
