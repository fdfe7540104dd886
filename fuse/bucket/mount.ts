import { closeSync, mkdirSync, openSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { CloudBucketMount } from "../../client/cloud-bucket-mount.js";
import { InvalidError } from "../../protocol/errors.js";
import { daemonEntry, spawnDaemon } from "../common/daemon-process.js";
import { logPath, mountRunDir } from "../common/mount-records.js";
import { unmountMountPoint } from "../common/unmount.js";
import type { BucketDaemonConfig } from "./config.js";

export interface MountCloudBucketOptions {
  /** Mount read-only even if the CloudBucketMount is not (e.g. `silo run -b BUCKET:/path:ro`). */
  readOnly?: boolean;
  /** Where AWS_* defaults come from when the mount has no secret (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** How long listings and lookups are trusted (default 1000 ms). */
  metadataTtlMs?: number;
  /** Complete uploads in the background after close (fsync still waits for them). */
  writeBack?: boolean;
  /** Requester pays with credentials from `env` (a CloudBucketMount itself needs a secret for it). */
  requesterPays?: boolean;
  /** How long to wait for the mount to go live (default 30 s). */
  timeoutMs?: number;
  /** The daemon stops when this process dies (`silo run`: its mounts must not outlive it). */
  exitWithParent?: boolean;
}

/** A live bucket mount served by its own daemon process. */
export interface BucketMountHandle {
  mountPoint: string;
  pid: number;
  /** The daemon's log (every refused operation is logged with its reason). */
  logFile: string;
  /** Stops the daemon: it unmounts, finishes uploads of files still open, and exits. */
  unmount(): Promise<void>;
}

/**
 * Turns a CloudBucketMount into the daemon's config: credentials from its secret (or from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in `env`), the endpoint from
 * the mount (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), the region from the mount, the secret's
 * AWS_REGION, AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
 */
export async function bucketDaemonConfig(mount: CloudBucketMount, mountPoint: string, opts: MountCloudBucketOptions = {}): Promise<BucketDaemonConfig> {
  const env = opts.env ?? process.env;
  const source: Record<string, string | undefined> = mount.secret ? await mount.secret.values() : env;
  const accessKeyId = source.AWS_ACCESS_KEY_ID ?? source.GOOGLE_ACCESS_KEY_ID;
  const secretAccessKey = source.AWS_SECRET_ACCESS_KEY ?? source.GOOGLE_ACCESS_KEY_SECRET;
  if (mount.secret && (!accessKeyId || !secretAccessKey)) {
    throw new InvalidError(
      `Secret '${mount.secret.name ?? mount.secret.id}' must hold AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or GOOGLE_ACCESS_KEY_ID and GOOGLE_ACCESS_KEY_SECRET)`,
      "INVALID",
    );
  }
  const requesterPays = mount.requesterPays || !!opts.requesterPays;
  if (requesterPays && !(accessKeyId && secretAccessKey)) {
    throw new InvalidError("Credentials are required in order to use Requester Pays (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a secret)", "INVALID");
  }
  return {
    bucket: mount.bucketName,
    mountPoint: resolve(mountPoint),
    prefix: mount.keyPrefix ?? "",
    readOnly: opts.readOnly || mount.readOnly,
    requesterPays,
    endpoint: mount.bucketEndpointUrl ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined),
    region: mount.region ?? source.AWS_REGION ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken: source.AWS_SESSION_TOKEN } : undefined,
    metadataTtlMs: opts.metadataTtlMs,
    writeBack: opts.writeBack,
    exitWithParent: opts.exitWithParent,
  };
}

/**
 * Mounts a cloud bucket at `mountPoint` in a separate daemon process and returns once the
 * mount is live (creating the directory if needed; a stale mount left by a killed daemon is
 * cleared first). What `silo bucket mount` and `silo run -b BUCKET:/path[:ro]` use.
 */
export async function mountCloudBucket(mount: CloudBucketMount, mountPoint: string, opts: MountCloudBucketOptions = {}): Promise<BucketMountHandle> {
  const config = await bucketDaemonConfig(mount, mountPoint, opts);
  // A stale mount point fails here with ENOTCONN; the daemon clears it.
  await mkdir(config.mountPoint, { recursive: true }).catch(() => {});
  // Its own process group (a Ctrl-C for us does not reach it; without exitWithParent it outlives us);
  // its output goes to a log next to its mount record.
  mkdirSync(mountRunDir(), { recursive: true, mode: 0o700 });
  const logFile = logPath(config.mountPoint);
  const logFd = openSync(logFile, "a", 0o600);
  const { child } = await spawnDaemon(daemonEntry("bucket"), [], {
    env: { ...process.env, SILO_MOUNT_LOG: logFile },
    output: logFd,
    logFile,
    stdin: JSON.stringify(config),
    detached: true,
    readyTimeoutMs: opts.timeoutMs,
  }).finally(() => closeSync(logFd));
  child.unref();
  return {
    mountPoint: config.mountPoint,
    pid: child.pid!,
    logFile,
    unmount: async () => {
      await unmountMountPoint(config.mountPoint);
    },
  };
}
