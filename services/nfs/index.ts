import type { FastifyPluginAsync } from "fastify";
import type { KindContext } from "../context.js";
import { normalizeTreeOptions } from "../file-trees.js";

export const KIND = "nfs";
/**
 * Network file systems: shared directories without commit/reload (Modal's NetworkFileSystem).
 * Their bytes and trees are kept by the file-tree store (the volume machinery: blocks, dedup,
 * GC), which serves their ids on its routes; what makes them network file systems is the
 * close-to-open consistency of their mounts and clients (fuse/nfs/, client/network-file-system.ts).
 * See docs/nfs.md.
 */
export const nfsPlugin: FastifyPluginAsync<KindContext> = async (_app, ctx) => {
  ctx.fileTrees.register(KIND, { prefix: "nf", normalizeOptions: normalizeTreeOptions });
};
