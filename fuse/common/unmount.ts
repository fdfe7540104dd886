import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import { isMounted, lazyUnmount, mountPointState } from "./mount-table.js";
import { processAlive, readMountRecord, recordPath } from "./mount-records.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface UnmountOptions {
  /** How long the daemon gets to stop (default 60 s). */
  timeoutMs?: number;
  /**
   * After the timeout: "kill" the daemon, or "detach" the mount point and leave the daemon to
   * finish (a volume's final commit may just be slow; killing it would lose the changes).
   */
  onTimeout?: "kill" | "detach";
}

export interface UnmountResult {
  /**
   * How it went: the daemon stopped on SIGTERM, was killed or left running (detached) after the
   * timeout, or there was no live daemon and a stale or foreign mount was detached.
   */
  how: "daemon-stopped" | "daemon-killed" | "daemon-detached" | "stale-unmounted" | "foreign-unmounted";
  pid?: number;
  /** A volume daemon stopped but could not commit everything: its journal dir, which keeps the changes. */
  pendingJournal?: string;
  /** The volume's name (or id) whose changes are pending. */
  pendingVolume?: string;
}

/**
 * Unmounts a silo mount (volume or bucket): asks the daemon its mount record names to stop
 * (SIGTERM: it finishes pending work, unmounts and exits), waits up to `timeoutMs`, then kills
 * or leaves it and detaches the mount point. Without a live daemon (killed with -9, or not
 * ours) the mount point is lazily unmounted.
 */
export async function unmountMountPoint(dir: string, opts: UnmountOptions = {}): Promise<UnmountResult> {
  const mountPoint = resolve(dir);
  const record = await readMountRecord(mountPoint);
  if (record && processAlive(record.pid)) {
    const pid = record.pid;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    while (Date.now() < deadline && processAlive(pid)) await sleep(50);
    if (!processAlive(pid)) {
      if (await isMounted(mountPoint)) await lazyUnmount(mountPoint);
      // A volume daemon removes its journal only once everything is committed.
      const pending = record.journal && existsSync(record.journal) ? record.journal : undefined;
      const volume = record.volumeName ?? record.volumeId ?? "VOLUME";
      return { how: "daemon-stopped", pid, ...(pending ? { pendingJournal: pending, pendingVolume: volume } : {}) };
    }
    const kill = (opts.onTimeout ?? "kill") === "kill";
    if (kill) process.kill(pid, "SIGKILL");
    await lazyUnmount(mountPoint).catch(() => {});
    if (kill) await rm(recordPath(mountPoint), { force: true });
    return { how: kill ? "daemon-killed" : "daemon-detached", pid };
  }
  await rm(recordPath(mountPoint), { force: true });
  const state = await mountPointState(mountPoint);
  if (state === "free") throw new Error(`${mountPoint} is not mounted`);
  await lazyUnmount(mountPoint);
  return { how: state === "stale" ? "stale-unmounted" : "foreign-unmounted" };
}

/** One line for the user about how `unmountMountPoint` went. */
export function describeUnmount(mountPoint: string, res: UnmountResult, timeoutMs: number): string {
  const dir = resolve(mountPoint);
  switch (res.how) {
    case "daemon-stopped":
      return res.pendingJournal
        ? `Unmounted ${dir}, but its final commit FAILED: the changes not committed are kept on this machine in ${res.pendingJournal}. ` +
            `The next mount of volume '${res.pendingVolume}' here commits them, or run 'silo volume recover ${res.pendingVolume}' (the daemon's log says why it failed).`
        : `Unmounted ${dir}`;
    case "daemon-killed":
      return `Unmounted ${dir} (the mount daemon, pid ${res.pid}, did not stop within ${timeoutMs} ms: killed)`;
    case "daemon-detached":
      return `Detached ${dir} (the mount daemon, pid ${res.pid}, did not finish within ${timeoutMs} ms and goes on in the background)`;
    case "stale-unmounted":
      return `Removed the dead mount at ${dir}`;
    case "foreign-unmounted":
      return `Detached ${dir} (no silo mount daemon: detached the mount point)`;
  }
}
