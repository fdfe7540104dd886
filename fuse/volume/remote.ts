import { closeSync } from "node:fs";
import { open } from "node:fs/promises";
import type { VolumeBlocks } from "../../client/volume-blocks.js";
import { fuseFdAddonIfBuilt } from "../../lib/native-addon.js";
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
          const mapped = await mapBlock(file.fd, file.size);
          if (mapped) return { data: mapped, fh, mapped: true };
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

/**
 * The server's blob file mapped (page cache, no copy): READs are answered with views of it, so the
 * reply's writev is the only copy of each byte (a pread into a pooled buffer was a second one,
 * half the daemon's CPU). Safe because blob files are immutable: written under a temporary name,
 * renamed in place, unlinked, never truncated or rewritten (services/blobs/local.ts), so a page of
 * the mapping never goes away under a reader (SIGBUS). Unmapped when the last view is collected.
 * Undefined where the addon lacks it or the kernel refuses (the caller preads).
 */
async function mapBlock(fd: number, size: number): Promise<Buffer | undefined> {
  const map = fuseFdAddonIfBuilt()?.mapFile;
  if (!map || size === 0) return undefined;
  return map(fd, size).catch(() => undefined);
}
