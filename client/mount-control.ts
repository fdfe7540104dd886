import { createConnection } from "node:net";
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

/** This job's mounts of a volume (by id), with their control sockets. */
function volumeMounts(volumeId: string): Array<JobMount & { socket: string }> {
  return [...jobMounts().values()].filter(
    (m): m is JobMount & { socket: string } => m.kind === "volume" && m.id === volumeId && typeof m.socket === "string",
  );
}

/** `Volume.commit()`: commits every writable mount of the volume in this job; a no-op when there is none. */
export async function commitMounted(volumeId: string): Promise<void> {
  for (const m of volumeMounts(volumeId)) if (!m.readOnly) await controlRequest(m.socket, "commit");
}

/** `Volume.reload()`: reloads every mount of the volume in this job; InvalidError when there is none. */
export async function reloadMounted(volumeId: string, name: string | null): Promise<void> {
  const mounts = volumeMounts(volumeId);
  if (mounts.length === 0) {
    throw new InvalidError(
      `Volume '${name ?? volumeId}' is not mounted in this job: reload() acts on a mount made by 'silo run -v' (SILO_MOUNTS)`,
      "INVALID",
    );
  }
  for (const m of mounts) await controlRequest(m.socket, "reload");
}
