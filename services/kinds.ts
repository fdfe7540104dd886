import type { FastifyPluginAsync } from "fastify";
import type { KindContext } from "./context.js";
import { dictsPlugin } from "./dicts/index.js";

/** The storage kinds the server offers; each registers its object kind and its routes. */
export const KINDS: Array<FastifyPluginAsync<KindContext>> = [dictsPlugin];
