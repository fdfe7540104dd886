import { createHash } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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
  /** The daemon's control socket (volume mounts: commit, reload, status). */
  socket?: string;
}

/** Per-user directory for mount records and daemon logs. */
export function mountRunDir(): string {
  return process.env.SILO_MOUNT_RUN_DIR ?? join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `silo-mounts-${process.getuid?.() ?? "user"}`);
}

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

/** Every record in the records dir whose daemon still runs (any mount namespace of this user). */
export async function listMountRecords(): Promise<MountRecord[]> {
  let names: string[];
  try {
    names = await readdir(mountRunDir());
  } catch {
    return [];
  }
  const out: MountRecord[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    try {
      const record = JSON.parse(await readFile(join(mountRunDir(), name), "utf8")) as MountRecord;
      if (processAlive(record.pid)) out.push(record);
    } catch {
      // Half-written or foreign file: not a mount to report.
    }
  }
  return out.sort((a, b) => a.mountPoint.localeCompare(b.mountPoint));
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
