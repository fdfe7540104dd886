import { text } from "node:stream/consumers";
import { isMounted } from "./mount-table.js";
import { type MountRecord, removeMountRecord, writeMountRecord } from "./mount-records.js";

/** Reads the JSON config the parent wrote to stdin (`spawnDaemon({ stdin })`). */
export async function readDaemonConfig<T>(): Promise<T> {
  return JSON.parse(await text(process.stdin)) as T;
}

/**
 * A daemon's log is its stderr, a file (fuse/common/mount-records.ts logPath, or the volume
 * mount's `<state dir>.log`), often on a disk that fills: a line that cannot be written is an
 * error of the stream, and unhandled it ends the daemon; with the thread-pool reader of
 * /dev/fuse that exit hangs every call on the mount. Call first thing in every daemon: the line
 * is lost, nothing else (later lines are written once there is room).
 */
export function survivesLogFailures(): void {
  if (process.stderr.listenerCount("error") === 0) process.stderr.on("error", () => {});
}

export interface DaemonRuntimeOptions {
  /** Written to the mount records dir so `unmount DIR` finds this daemon (removed on stop). */
  record: Omit<MountRecord, "pid" | "startedAt" | "logFile">;
  /**
   * Stops the file system once: `mounted` is false when someone else already unmounted it.
   * Resolves with the daemon's exit code.
   */
  shutdown(why: string, mounted: boolean): Promise<number>;
  /** Also stop when the process that started this daemon dies (`silo run` killed hard). */
  exitWithParent?: boolean;
  /** Check every this often that the mount is still in the kernel's table (an external `umount`). */
  watchIntervalMs?: number;
  log?: (msg: string) => void;
}

export interface ServingDaemon {
  /** Resolves with the exit code once the daemon has stopped. */
  done: Promise<number>;
  /** Stops the daemon (e.g. on an unmount request over a control socket). */
  stop(why: string): void;
}

/**
 * After the mount is live: records it for `unmount DIR`, then shuts down once on SIGTERM /
 * SIGINT / SIGHUP, when someone else unmounted it, or (exitWithParent) when the parent died.
 * Resolves once the record is written: report ready only then, so `unmount` right after finds it.
 */
export async function serveUntilStopped(opts: DaemonRuntimeOptions): Promise<ServingDaemon> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`));
  const record: MountRecord = { ...opts.record, pid: process.pid, startedAt: Date.now(), logFile: process.env.SILO_MOUNT_LOG ?? "" };
  // biome-ignore lint/correctness/noUnusedVariables: read by `stopping ??=`, so shutdown runs once
  let stopping: Promise<number> | undefined;
  let finish!: (code: number) => void;
  const done = new Promise<number>((res) => (finish = res));
  const stop = (why: string, mounted = true) => {
    stopping ??= (async () => {
      clearInterval(watch);
      log(`stopping (${why})`);
      const code = await opts.shutdown(why, mounted).catch((err: Error) => {
        log(`shutdown failed: ${err.message}`);
        return 1;
      });
      await removeMountRecord(record.mountPoint, record.pid).catch(() => {});
      log("stopped");
      finish(code);
      return code;
    })();
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => stop(sig));
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (opts.exitWithParent && process.ppid !== parent) stop("the process that started this mount is gone");
    isMounted(record.mountPoint).then(
      (mounted) => {
        if (!mounted) stop("unmounted externally", false);
      },
      () => {},
    );
  }, opts.watchIntervalMs ?? 1000);
  await writeMountRecord(record).catch((err: Error) => log(`could not write mount record: ${err.message}`));
  return { done, stop: (why) => stop(why) };
}
