import { resolve } from "node:path";
import { isMounted, lazyUnmount, mountPointState } from "./mount-table.js";
import { processAlive, readMountRecord, recordPath } from "./mount-records.js";
import { rm } from "node:fs/promises";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface UnmountResult {
  /** How it went: the daemon stopped on SIGTERM, was killed after the timeout, or there was only a stale/foreign mount. */
  how: "daemon-stopped" | "daemon-killed" | "lazy-unmounted";
}

/**
 * Unmounts a silo mount: asks its daemon to stop (SIGTERM: it unmounts, finishes pending
 * uploads and exits), waits up to `timeoutMs`, then kills it and detaches the mount point.
 * Without a live daemon (killed with -9, or not ours) the mount point is lazily unmounted.
 */
export async function unmountMountPoint(dir: string, opts: { timeoutMs?: number } = {}): Promise<UnmountResult> {
  const mountPoint = resolve(dir);
  const record = await readMountRecord(mountPoint);
  if (record && processAlive(record.pid)) {
    process.kill(record.pid, "SIGTERM");
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    while (Date.now() < deadline && processAlive(record.pid)) await sleep(50);
    if (!processAlive(record.pid)) {
      if (await isMounted(mountPoint)) await lazyUnmount(mountPoint);
      return { how: "daemon-stopped" };
    }
    process.kill(record.pid, "SIGKILL");
    await lazyUnmount(mountPoint).catch(() => {});
    await rm(recordPath(mountPoint), { force: true });
    return { how: "daemon-killed" };
  }
  await rm(recordPath(mountPoint), { force: true });
  const state = await mountPointState(mountPoint);
  if (state === "free") throw new Error(`${mountPoint} is not mounted`);
  await lazyUnmount(mountPoint);
  return { how: "lazy-unmounted" };
}
