import { mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lazyUnmount, mountPointState } from "../../fuse/common/mount-table.js";
import { processAlive, readMountRecord } from "../../fuse/common/mount-records.js";
import { type CliResult, runCli } from "./silo-server.js";
import type { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll } from "vitest";
import { waitFor } from "./eventually.js";
import { emptyBucket, freshBucket, s3Env, startS3 } from "./s3.js";

/** Mount records and daemon logs of this test run stay in their own directory. */
export const RUN_DIR = mkdtempSync(join(tmpdir(), "silo-mount-run-"));
process.env.SILO_MOUNT_RUN_DIR = RUN_DIR;

export const newMountPoint = () => mkdtempSync(join(tmpdir(), "silo-bucket-mnt-"));

/** `silo bucket …` with the test S3 server's AWS_* variables. */
export function bucketCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(["bucket", ...args], { ...process.env, ...s3Env(), SILO_MOUNT_RUN_DIR: RUN_DIR, ...env });
}

/** Mounts with the CLI; throws with its output if it fails. */
export async function cliMount(bucket: string, dir: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const res = await bucketCli(["mount", bucket, dir, ...flags], env);
  if (res.code !== 0) throw new Error(`silo bucket mount failed (${res.code}): ${res.stderr}${res.stdout}`);
}

/** Teardown that works after any failure: stop the daemon, detach the mount point, remove the directory. */
export async function forceUnmount(dir: string): Promise<void> {
  const record = await readMountRecord(dir);
  if (record) {
    try {
      process.kill(record.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if ((await mountPointState(dir).catch(() => "stale")) !== "free") await lazyUnmount(dir).catch(() => {});
  // Never recursive: if the unmount failed, that would delete the bucket's contents through the mount.
  try {
    rmdirSync(dir);
  } catch {
    // left for the OS to clean
  }
}

export async function daemonPid(dir: string): Promise<number> {
  const record = await readMountRecord(dir);
  if (!record) throw new Error(`no mount record for ${dir}`);
  return record.pid;
}

/** Mounts `bucket` (CLI, with `flags`) on a fresh directory for the duration of `fn`; always unmounts. */
export async function withMount<T>(bucket: string, flags: string[], fn: (dir: string) => Promise<T>, env: NodeJS.ProcessEnv = {}): Promise<T> {
  const dir = newMountPoint();
  try {
    await cliMount(bucket, dir, flags, env);
    return await fn(dir);
  } finally {
    await forceUnmount(dir);
  }
}

/** Waits until a process is gone; true if it is (false if it outlives the generous bound of waitFor). */
export async function waitForExit(pid: number): Promise<boolean> {
  return waitFor(`pid ${pid} exits`, () => !processAlive(pid)).then(
    () => true,
    () => false,
  );
}

export interface MountedBucket {
  s3: S3Client;
  bucket: string;
  mnt: string;
}

/**
 * A suite's fresh bucket, filled by `fill` and then mounted with the CLI (objects put before the
 * mount are visible at once; later ones within the metadata TTL). Emptied and unmounted after.
 */
export function mountedBucketFixture(stem: string, fill: (s3: S3Client, bucket: string) => Promise<void> = async () => {}): MountedBucket {
  const fx = {} as MountedBucket;
  beforeAll(async () => {
    fx.s3 = await startS3();
    fx.bucket = await freshBucket(fx.s3, stem);
    await fill(fx.s3, fx.bucket);
    fx.mnt = newMountPoint();
    await cliMount(fx.bucket, fx.mnt);
  });
  afterAll(async () => {
    if (fx.mnt) await forceUnmount(fx.mnt);
    if (fx.bucket) await emptyBucket(fx.s3, fx.bucket);
    fx.s3?.destroy();
  });
  return fx;
}
