import { type DaemonReady, daemonEntry, spawnDaemon } from "../common/daemon-process.js";
import type { VolumeDaemonConfig } from "./config.js";
import { journalRoot } from "./journal.js";

export interface SpawnVolumeDaemonOptions {
  /** Where its stdout/stderr go: "inherit", or an open file descriptor (its log). */
  output: "inherit" | number;
  logFile?: string;
  /** Own process group: terminal signals do not reach it and it may outlive the launcher. */
  detached: boolean;
}

/**
 * Starts the mount daemon of a file tree, a volume (fuse/volume/main.ts) or a network file
 * system (fuse/nfs/main.ts), with its config on stdin, as the bucket mount does; resolves once
 * it serves the mount. The journal location is the launcher's, so a daemon started from any
 * environment finds the same journals.
 */
export function spawnVolumeDaemon(
  kind: "volume" | "nfs",
  config: VolumeDaemonConfig,
  opts: SpawnVolumeDaemonOptions,
): ReturnType<typeof spawnDaemon> {
  const full: VolumeDaemonConfig = { ...config, journalRoot: config.journalRoot ?? journalRoot() };
  return spawnDaemon(daemonEntry(kind), [], {
    // FUSE ops run as libuv file-system work: more threads than the default 4 keep many in flight.
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "16", ...(opts.logFile ? { SILO_MOUNT_LOG: opts.logFile } : {}) },
    output: opts.output,
    logFile: opts.logFile,
    stdin: JSON.stringify(full),
    detached: opts.detached,
  });
}

export type { DaemonReady };
