import { createHash } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { mountRunDir } from "../../client/mount-control.js";
import { join, resolve } from "node:path";

/** What a running mount daemon leaves behind so `unmount DIR` can find and stop it. */
export interface MountRecord {
  pid: number;
  mountPoint: string;
  /** "bucket", "volume", … */
  kind: string;
  /** Human-readable source, e.g. `s3://bucket/prefix/`. */
  source: string;
  logFile: string;
  startedAt: number;
  /** Volume mounts: the volume's id and the control socket (commit, reload), for `Volume.commit()` and `silo volume commit DIR`. */
  volumeId?: string;
  volumeName?: string | null;
  environment?: string;
  readOnly?: boolean;
  socket?: string;
  /** Made by `silo run` for its command (only that job's Volume.commit() acts on it). */
  jobMount?: boolean;
  /** Volume mounts: the journal dir; if it is still there after the daemon stopped, changes are pending. */
  journal?: string | null;
}

/** Per-user directory for mount records and daemon logs (stated in the client, which reads the records too). */
export { mountRunDir };

/**
 * This process's mount namespace: `silo run` mounts in a private one, where the same path may
 * be mounted by another job, so a record names its namespace too (and the host's `unmount DIR`
 * never signals a job's daemon).
 */
function mountNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/mnt");
  } catch {
    return "";
  }
}

const recordName = (mountPoint: string) =>
  createHash("sha256").update(`${mountNamespace()}\0${resolve(mountPoint)}`).digest("hex").slice(0, 24);

export const recordPath = (mountPoint: string) => join(mountRunDir(), `${recordName(mountPoint)}.json`);
export const logPath = (mountPoint: string) => join(mountRunDir(), `${recordName(mountPoint)}.log`);

export async function writeMountRecord(record: MountRecord): Promise<void> {
  await mkdir(mountRunDir(), { recursive: true, mode: 0o700 });
  const file = recordPath(record.mountPoint);
  await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export async function readMountRecord(mountPoint: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordPath(mountPoint), "utf8")) as MountRecord;
  } catch {
    return undefined;
  }
}

/** Removes the record if it still belongs to `pid` (a newer daemon may own the mount point now). */
export async function removeMountRecord(mountPoint: string, pid: number): Promise<void> {
  const record = await readMountRecord(mountPoint);
  if (record && record.pid === pid) await rm(recordPath(mountPoint), { force: true });
}

/** Whether `pid` is a running process (a zombie, exited but not yet reaped by its parent, is not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
