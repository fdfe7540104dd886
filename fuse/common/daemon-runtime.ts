import { closeSync, writeSync } from "node:fs";
import { text } from "node:stream/consumers";
import { isMounted } from "./mount-table.js";
import { type MountRecord, removeMountRecord, writeMountRecord } from "./mount-records.js";

/** The one line a daemon sends its launcher on fd 3. */
export interface ReadyMessage {
  ready: boolean;
  error?: string;
}

/** Reads the JSON config the launcher wrote to stdin. */
export async function readDaemonConfig<T>(): Promise<T> {
  return JSON.parse(await text(process.stdin)) as T;
}

/** What the daemon side needs from a mounted file system to live and die well. */
export interface MountedFs {
  /** Detach the mount (lazy: open files keep working until closed). */
  unmount(): Promise<void>;
  /** Finish pending work (e.g. uploads of files still open); resolves when nothing is left or on timeout. */
  drain(timeoutMs: number): Promise<void>;
}

export interface DaemonRuntimeOptions {
  record: Omit<MountRecord, "pid" | "startedAt" | "logFile">;
  /** Check every this often that the mount is still in the kernel's table (an external `umount`). */
  watchIntervalMs?: number;
  drainTimeoutMs?: number;
  log?: (msg: string) => void;
}

/** Launcher handshake: the fd the launcher named in SILO_MOUNT_STATUS_FD (none in a foreground run). */
export function reportStatus(msg: ReadyMessage): void {
  const fd = Number(process.env.SILO_MOUNT_STATUS_FD);
  if (!Number.isInteger(fd) || fd < 3) return;
  delete process.env.SILO_MOUNT_STATUS_FD;
  // Synchronous: the daemon may exit right after a failure, and the line must be in the pipe by then.
  try {
    writeSync(fd, `${JSON.stringify(msg)}\n`);
    closeSync(fd);
  } catch {
    // The launcher gave up waiting (timeout): nothing left to tell.
  }
}

/**
 * After the mount is live: records it for `unmount DIR`, then unmounts cleanly on SIGTERM /
 * SIGINT / SIGHUP or when someone else unmounted it, draining pending work before exit.
 * Resolves when the daemon should exit.
 */
export function serveUntilStopped(fs: MountedFs, opts: DaemonRuntimeOptions): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`));
  const record: MountRecord = { ...opts.record, pid: process.pid, startedAt: Date.now(), logFile: process.env.SILO_MOUNT_LOG ?? "" };
  return new Promise((done) => {
    let stopping = false;
    const stop = async (why: string, unmount: boolean) => {
      if (stopping) return;
      stopping = true;
      clearInterval(watch);
      log(`stopping (${why})`);
      if (unmount) await fs.unmount().catch((err: Error) => log(`unmount failed: ${err.message}`));
      await fs.drain(opts.drainTimeoutMs ?? 60_000).catch((err: Error) => log(`drain failed: ${err.message}`));
      await removeMountRecord(record.mountPoint, record.pid).catch(() => {});
      log("stopped");
      done();
    };
    for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => void stop(sig, true));
    const watch = setInterval(() => {
      isMounted(record.mountPoint).then(
        (mounted) => {
          if (!mounted) void stop("unmounted externally", false);
        },
        () => {},
      );
    }, opts.watchIntervalMs ?? 1000);
    writeMountRecord(record).catch((err: Error) => log(`could not write mount record: ${err.message}`));
  });
}
