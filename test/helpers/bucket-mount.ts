import { mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lazyUnmount, mountPointState } from "../../fuse/common/mount-table.js";
import { readMountRecord } from "../../fuse/common/mount-records.js";
import { type CliResult, runCli } from "./silo-server.js";
import { s3Env } from "./s3.js";

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
