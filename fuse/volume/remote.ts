import { closeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { VolumeBlocks } from "../../client/volume-blocks.js";
import type { BlockFetch, LocalOpen } from "./block-cache.js";

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
  const openLocal = localOpen(remote);
  return async (hash, into) => {
    const file = await openLocal(hash);
    if (file) {
      const { fh, size } = file;
      try {
        const data = into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
        for (let at = 0; at < size; ) {
          const { bytesRead } = await fh.read(data, at, size - at, at);
          if (bytesRead === 0) throw new Error(`block ${hash}: the server's file is shorter than the block`);
          at += bytesRead;
        }
        return { data, fh };
      } catch (err) {
        await fh.close();
        remote.noteLocalFailure(err);
      }
    }
    return remote.readBlock(hash, undefined, into);
  };
}

/**
 * Opens block `hash`'s file on this host (local block reads) without reading it, or undefined
 * when that path is not available for it. The file holds at least `size` bytes when opened
 * (checked: a blob file is never rewritten in place, so reads of the block's bytes never come short).
 */
export function localOpen(remote: VolumeRemote): LocalOpen {
  return async (hash) => {
    const file = await remote.openBlockLocal(hash);
    if (!file) return undefined;
    try {
      // A FileHandle of the passed file (Node makes none of a bare fd): the same file, reopened
      // through /proc (also if the server has deleted it meanwhile).
      const fh = await open(`/proc/self/fd/${file.fd}`, "r");
      try {
        const { size } = await fh.stat();
        if (size < file.size) throw new Error(`block ${hash}: the server's file holds ${size} bytes, ${file.size} expected`);
        return { fh, size: file.size };
      } catch (err) {
        await fh.close();
        throw err;
      }
    } catch (err) {
      remote.noteLocalFailure(err);
      return undefined;
    } finally {
      closeSync(file.fd);
    }
  };
}
