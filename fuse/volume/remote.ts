import { closeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { VolumeBlocks } from "../../client/volume-blocks.js";
import type { BlockFetch } from "./block-cache.js";

/**
 * What the mount daemon talks to: the client's block-level API of the mounted volume
 * (`volume.blocks`), the real one, so tests never swap in a fake.
 */
export type VolumeRemote = VolumeBlocks;

/**
 * The mount's block fetch: the server's own blob file when the server runs on this host (local
 * block reads, client/local-blocks.ts), kept open by the cache; else, and whenever that path
 * fails, over HTTP.
 */
export function localFirst(remote: VolumeRemote): BlockFetch {
  return async (hash, into) => {
    const file = await remote.openBlockLocal(hash);
    if (file) {
      try {
        // A FileHandle of the passed file (Node makes none of a bare fd): the same file, reopened
        // through /proc (also if the server has deleted it meanwhile).
        const fh = await open(`/proc/self/fd/${file.fd}`, "r");
        try {
          const data = into.length >= file.size ? into.subarray(0, file.size) : Buffer.allocUnsafe(file.size);
          for (let at = 0; at < file.size; ) {
            const { bytesRead } = await fh.read(data, at, file.size - at, at);
            if (bytesRead === 0) throw new Error(`block ${hash}: the server's file is shorter than the block`);
            at += bytesRead;
          }
          return { data, fh };
        } catch (err) {
          await fh.close();
          throw err;
        }
      } catch (err) {
        remote.noteLocalFailure(err);
      } finally {
        closeSync(file.fd);
      }
    }
    return remote.readBlock(hash, undefined, into);
  };
}
