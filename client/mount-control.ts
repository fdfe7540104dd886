import { readdirSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorFromResponse, InvalidError } from "../protocol/errors.js";

/**
 * One mount of a job, as `silo run` describes it in `SILO_MOUNTS` (a JSON object keyed by
 * mount path). `kind` tells volume mounts from other kinds (network file systems, buckets).
 */
export interface JobMount {
  kind: "volume" | "nfs" | "bucket";
  name: string | null;
  id: string;
  environment: string;
  readOnly: boolean;
  /** Volumes: the mount's control socket (commit, reload, status). Buckets have none. */
  socket?: string;
}

export const SILO_MOUNTS_ENV = "SILO_MOUNTS";

/** The job's mounts by path; empty outside `silo run`. */
export function jobMounts(env: NodeJS.ProcessEnv = process.env): Map<string, JobMount> {
  const text = env[SILO_MOUNTS_ENV];
  if (!text) return new Map();
  try {
    return new Map(Object.entries(JSON.parse(text) as Record<string, JobMount>));
  } catch {
    throw new InvalidError(`${SILO_MOUNTS_ENV} is not valid JSON`, "INVALID");
  }
}

/** Sends one request to a mount daemon's control socket and returns its result (typed errors on failure). */
export function controlRequest<T>(socket: string, op: "commit" | "reload" | "status" | "unmount", timeoutMs = 600_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`mount control socket ${socket} did not answer '${op}' within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(`${JSON.stringify({ op })}\n`));
    conn.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: T; error?: { code: string; message: string } };
      if (reply.ok) resolve(reply.result as T);
      else reject(errorFromResponse(0, reply));
    });
    conn.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the mount daemon at ${socket}: ${err.message}`));
    });
  });
}

/**
 * Per-user directory where every running mount daemon leaves a record (fuse/common/mount-records.ts
 * writes them; `SILO_MOUNT_RUN_DIR` overrides).
 */
export function mountRunDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SILO_MOUNT_RUN_DIR ?? join(env.XDG_RUNTIME_DIR ?? tmpdir(), `silo-mounts-${process.getuid?.() ?? "user"}`);
}

/** The fields of a daemon's mount record that tell a volume mount and how to reach it. */
interface VolumeDaemonRecord {
  pid: number;
  kind: string;
  volumeId?: string;
  volumeName?: string | null;
  environment?: string;
  readOnly?: boolean;
  socket?: string;
  /** Made by `silo run` for its command: only that job acts on it. */
  jobMount?: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Mounts of a volume made on this machine with `silo volume mount` (by their daemons' records). */
function hostMounts(volumeId: string): Array<JobMount & { socket: string }> {
  const dir = mountRunDir();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  const out: Array<JobMount & { socket: string }> = [];
  for (const n of names) {
    let r: VolumeDaemonRecord;
    try {
      r = JSON.parse(readFileSync(join(dir, n), "utf8")) as VolumeDaemonRecord;
    } catch {
      continue;
    }
    if (r.kind !== "volume" || r.volumeId !== volumeId || !r.socket || r.jobMount || !alive(r.pid)) continue;
    out.push({ kind: "volume", name: r.volumeName ?? null, id: volumeId, environment: r.environment ?? "", readOnly: r.readOnly ?? false, socket: r.socket });
  }
  return out;
}

/**
 * The mounts of a volume that `Volume.commit()`/`reload()` act on: in a job (`silo run`), the
 * job's own mounts of it; elsewhere, the mounts made on this machine by `silo volume mount`.
 */
function volumeMounts(volumeId: string): Array<JobMount & { socket: string }> {
  const job = [...jobMounts().values()].filter(
    (m): m is JobMount & { socket: string } => m.kind === "volume" && m.id === volumeId && typeof m.socket === "string",
  );
  return job.length > 0 ? job : hostMounts(volumeId);
}

function notMounted(volumeId: string, name: string | null, op: string): InvalidError {
  return new InvalidError(
    `Volume '${name ?? volumeId}' is not mounted here: ${op}() acts on mounts made by 'silo run -v' (in that job) or by 'silo volume mount' on this machine`,
    "INVALID",
  );
}

/** `Volume.commit()`: commits every writable mount of the volume (see volumeMounts); InvalidError when there is none. */
export async function commitMounted(volumeId: string, name: string | null = null): Promise<void> {
  const mounts = volumeMounts(volumeId);
  if (mounts.length === 0) throw notMounted(volumeId, name, "commit");
  for (const m of mounts) if (!m.readOnly) await controlRequest(m.socket, "commit");
}

/** `Volume.reload()`: reloads every mount of the volume (see volumeMounts); InvalidError when there is none. */
export async function reloadMounted(volumeId: string, name: string | null): Promise<void> {
  const mounts = volumeMounts(volumeId);
  if (mounts.length === 0) throw notMounted(volumeId, name, "reload");
  for (const m of mounts) await controlRequest(m.socket, "reload");
}
