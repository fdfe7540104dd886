import type { VolumeDaemonConfig } from "../volume/config.js";
import { serveMountConfig } from "../volume/daemon.js";
import { closeToOpen } from "./close-to-open.js";

/**
 * Serves a network file system mount: the volume mount daemon with close-to-open consistency
 * layered on its file system (see serveMountConfig).
 */
export function serveNfsMount(config: VolumeDaemonConfig): Promise<number> {
  return serveMountConfig(config, async (silo, name) => (await silo.networkFileSystems.fromName(name)).treeHandle().blocks, closeToOpen);
}
