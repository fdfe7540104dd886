import type { VolumeBlocks } from "../../client/volume-blocks.js";
import type { BlockFetch } from "./block-cache.js";

/**
 * What the mount daemon talks to: the client's block-level API of the mounted volume
 * (`volume.blocks`), the real one, so tests never swap in a fake.
 */
export type VolumeRemote = VolumeBlocks;

/**
 * The mount's block fetch: the server's own blob file when the server runs on this host (local
 * block reads, client/local-blocks.ts), else, and whenever that path fails, over HTTP.
 */
export function localFirst(remote: VolumeRemote): BlockFetch {
  return async (hash, into) => {
    const data = await remote.readBlockLocal(hash, into);
    return data ? { data, local: true } : remote.readBlock(hash, undefined, into);
  };
}
