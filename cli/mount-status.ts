import { join, resolve } from "node:path";
import { controlRequest } from "../client/mount-control.js";
import { listMountRecords, readMountRecord } from "../fuse/common/mount-records.js";
import { stateDirFor } from "../fuse/volume/state-dir.js";
import type { MountStatus } from "../fuse/volume/mounted-volume.js";
import type { WholeFileStats } from "../fuse/volume/whole-files.js";
import { UsageError } from "./output.js";

/** What a volume mount daemon answers to `status` on its control socket: the mount's own status, plus where and how it serves. */
export interface MountStatusReport extends MountStatus {
  dir: string;
  readOnly: boolean;
  /** The version the mount's pin keeps on the server (daemons before it do not report it). */
  pinnedVersion?: number;
  cache?: { hits: number; misses: number; hitRatio: number; bytesFetched: number; localBlocks?: number; sizeBytes: number; maxBytes: number };
  commits?: { commits: number; failures: number; lastCommitMs: number; totalCommitMs: number; lastCommitAt: number };
  /** Whole-file copies of committed files for passthrough (read-only mounts; null when off). */
  wholeFiles?: WholeFileStats | null;
  /** Inode numbers the kernel may hold now (volume mounts). */
  kernelInodes?: number;
}

/** Asks the daemon serving `dir` for its status (found by its mount record, else the default state dir). */
export async function mountStatus(dir: string): Promise<MountStatusReport> {
  const record = await readMountRecord(dir);
  // Volume and network-file-system mounts have a control socket; bucket mounts do not.
  if (record && !record.socket && record.kind !== "volume") throw new UsageError(`${resolve(dir)} is a ${record.kind} mount: it has no status to show`);
  const socket = record?.socket ?? join(stateDirFor(dir), "control.sock");
  return controlRequest<MountStatusReport>(socket, "status", 10_000).catch((err: Error) => {
    throw new UsageError(`No volume mount answers at ${resolve(dir)} (${err.message})`);
  });
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** The report for people, one fact a line. */
export function describeMountStatus(s: MountStatusReport): string {
  const lines: Array<[string, string]> = [
    ["volume", `${s.volume ?? "(ephemeral)"} (${s.volumeId})${s.readOnly ? ", read-only" : ""}`],
    ["mounted at", s.dir],
    ["version", String(s.version)],
    ...pinnedLine(s),
    ["pending changes", `${s.dirtyPaths} path${s.dirtyPaths === 1 ? "" : "s"}`],
    ["open files", String(s.openFiles)],
    ["inodes", `${s.inodes} of ${s.inodeLimit}`],
  ];
  // Daemons before the tree loaded on demand do not report it.
  if (s.loadedDirs !== undefined) lines.push(["directories read", String(s.loadedDirs)]);
  if (s.commits) {
    const c = s.commits;
    const last = c.lastCommitAt ? `${new Date(c.lastCommitAt).toISOString()}, took ${c.lastCommitMs.toFixed(0)} ms` : "none yet";
    lines.push(["commits", `${c.commits} (${c.failures} failed); last: ${last}`]);
  }
  lines.push(["last commit error", s.lastCommitError ?? "none"]);
  // Daemons before it do not report it.
  if (s.lastJournalError) lines.push(["journal error", `${s.lastJournalError} (close and fsync fail until it can be written)`]);
  if (s.cache) {
    const c = s.cache;
    lines.push(["block cache", `${mib(c.sizeBytes)} of ${mib(c.maxBytes)}, hit ratio ${(c.hitRatio * 100).toFixed(1)}% (${c.hits} hits, ${c.misses} misses)`]);
    lines.push(["bytes fetched", `${c.bytesFetched} (${mib(c.bytesFetched)})`]);
    // Daemons before local block reads do not report it.
    if (c.localBlocks !== undefined) lines.push(["local block reads", `${c.localBlocks} blocks read from the server's own files on this host`]);
  }
  if (s.wholeFiles) {
    const w = s.wholeFiles;
    lines.push(["whole files", `${w.files} (${mib(w.bytes)} of the block cache's budget); opens passed through on them ${w.served}`]);
  }
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join("");
}

/** The pinned version, when the daemon reports it, with why it may be older than the served one. */
function pinnedLine(s: MountStatusReport): Array<[string, string]> {
  if (s.pinnedVersion === undefined) return [];
  const why = s.pinnedVersion < s.version ? " (older than the served one: files pending or open here came from it; the server keeps every version from it on)" : "";
  return [["pinned version", `${s.pinnedVersion}${why}`]];
}

/** Every live volume mount of this user with its status (or why it did not answer). */
export async function allMountStatuses(): Promise<Array<{ dir: string; status?: MountStatusReport; error?: string }>> {
  const records = (await listMountRecords()).filter((r) => r.socket);
  return Promise.all(
    records.map((r) =>
      controlRequest<MountStatusReport>(r.socket!, "status", 5_000).then(
        (status) => ({ dir: r.mountPoint, status }),
        (err: Error) => ({ dir: r.mountPoint, error: err.message }),
      ),
    ),
  );
}
