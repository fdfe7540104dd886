import type { SiloClient } from "../../client/silo-client.js";
import type { VolumeRemote } from "./remote.js";

/** Looks up the named volume the daemon serves (the client's Volume satisfies VolumeRemote). */
export async function openVolume(silo: SiloClient, name: string): Promise<VolumeRemote> {
  // TEMPORARY until the volumes branch is merged: `silo.volumes` comes from it.
  const volumes = (silo as unknown as { volumes: { fromName(name: string): Promise<VolumeRemote> } }).volumes;
  return volumes.fromName(name);
}
