import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlockCache } from "./block-cache.js";
import { ContentStore } from "./file-content.js";
import { claimOrphans, Journal, journalRoot, volumeJournalDir } from "./journal.js";
import { MountedVolume } from "./mounted-volume.js";
import type { VolumeRemote } from "./remote.js";

export interface RecoverOptions {
  server: string;
  environment?: string;
  journalRoot?: string;
  /** How long transient failures are retried (default 60 s). */
  retryForMs?: number;
  log?: (msg: string) => void;
}

/**
 * `silo volume recover`: commits the changes that mounts of this volume on this machine left in
 * their journals (a failed final commit, a killed daemon), without mounting. On failure the
 * changes stay in a journal for the next attempt.
 */
export async function recoverVolume(remote: VolumeRemote, opts: RecoverOptions): Promise<{ journals: number; changes: number; version: number }> {
  const volumeDir = volumeJournalDir(opts.journalRoot ?? journalRoot(), opts.server, remote.id);
  const scratch = await mkdtemp(join(tmpdir(), "silo-recover-"));
  let mvRef: MountedVolume | undefined;
  const journal = await Journal.create(volumeDir, { server: opts.server, volumeId: remote.id, volume: remote.name, environment: opts.environment }, (p) =>
    mvRef!.recordOf(p),
  );
  const cache = new BlockCache(join(scratch, "cache"), 256 * 1024 * 1024, (hash, into) => remote.readBlock(hash, undefined, into));
  try {
    await cache.init();
    const mv = new MountedVolume(remote, new ContentStore(journal.upperDir, cache));
    mvRef = mv;
    const pin = await remote.pinVersion();
    try {
      await mv.load(pin.version);
      mv.attachJournal(journal);
      const claims = await claimOrphans(volumeDir, journal.dir);
      if (claims.length === 0) {
        await journal.remove();
        return { journals: 0, changes: 0, version: mv.viewVersion };
      }
      await mv.replay(claims);
      // Hold the version the changes refer to while we commit them, if the server still keeps it.
      const held = mv.heldVersion();
      if (held !== pin.version) await remote.renewPin(pin.pinId, held).catch(() => {});
      await journal.checkpoint(mv.ns.dirty);
      for (const c of claims) await rm(c.dir, { recursive: true, force: true });
      const r = await mv.commit({ retryForMs: opts.retryForMs ?? 60_000, log: opts.log });
      await journal.remove();
      return { journals: claims.length, changes: r.changes, version: r.version };
    } finally {
      await remote.unpin(pin.pinId).catch(() => {});
    }
  } catch (err) {
    await journal.close().catch(() => {});
    throw err;
  } finally {
    await cache.close().catch(() => {});
    await rm(scratch, { recursive: true, force: true });
  }
}
