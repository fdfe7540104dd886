import type { FastifyPluginAsync } from "fastify";
import type { KindContext } from "./context.js";
import { dictsPlugin } from "./dicts/index.js";
import { nfsPlugin } from "./nfs/index.js";
import { queuesPlugin } from "./queues/index.js";
import { secretsPlugin } from "./secrets/index.js";
import { volumesPlugin } from "./volumes/index.js";

/** The storage kinds the server offers; each registers its object kind and its routes. */
export const KINDS: Array<FastifyPluginAsync<KindContext>> = [dictsPlugin, queuesPlugin, volumesPlugin, nfsPlugin, secretsPlugin];
