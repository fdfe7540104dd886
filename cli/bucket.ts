import type { Command } from "commander";
import { CloudBucketMount } from "../client/cloud-bucket-mount.js";
import { SiloError } from "../protocol/errors.js";
import { clientFor, parseCount } from "./output.js";

interface MountOpts {
  endpoint?: string;
  prefix?: string;
  readOnly?: boolean;
  region?: string;
  requesterPays?: boolean;
  secret?: string;
  foreground?: boolean;
  metadataTtlMs?: number;
  writeBack?: boolean;
}


/** `silo run -b BUCKET[/prefix/]:/path[:ro]`, parsed. */
export function registerBucket(program: Command): void {
  const bucket = program.command("bucket").description("Mount S3-compatible buckets (AWS S3, R2, GCS, MinIO, …) as directories");

  bucket
    .command("mount <bucket> <dir>")
    .description("Mount a bucket at DIR (its own daemon process; returns once the mount is live)")
    .option("--endpoint <url>", "S3 endpoint URL (default $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS)")
    .option("--prefix <prefix>", "mount only keys under this prefix (must end in '/')")
    .option("--read-only", "refuse every write with EROFS")
    .option("--region <region>", "bucket region (default $AWS_REGION, else us-east-1 with redirects followed)")
    .option("--requester-pays", "the requester pays for requests and transfer (needs credentials)")
    .option("--secret <name>", "take credentials from this silo secret instead of AWS_* variables")
    .option("--metadata-ttl-ms <ms>", "how long listings and lookups are trusted before asking S3 again", parseCount)
    .option("--write-back", "let close() return before the upload completes (fsync still waits; upload errors are only logged)")
    .option("--foreground", "serve the mount in this process until Ctrl-C / SIGTERM")
    .addHelpText(
      "after",
      `
Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN, or --secret NAME
(a secret made with 'silo secret create'). Semantics follow mountpoint-s3: reads anywhere; writes
only to new files or with O_TRUNC, sequential, visible on close; no append, rename, chmod or links.
See docs/buckets.md. Unmount with 'silo bucket unmount DIR'.

Examples:
  silo bucket mount my-bucket /mnt/data --read-only
  silo bucket mount my-r2 /mnt/r2 --endpoint https://<account>.r2.cloudflarestorage.com --secret r2
  silo bucket mount logs /mnt/logs --prefix 2024/january/`,
    )
    .action(async (bucketName: string, dir: string, opts: MountOpts, cmd: Command) => {
      const { mountCloudBucket, bucketDaemonConfig } = await import("../fuse/bucket/mount.js");
      const silo = opts.secret ? await clientFor(cmd) : undefined;
      try {
        const secret = await silo?.secrets.fromName(opts.secret!);
        const mount = new CloudBucketMount(bucketName, {
          bucketEndpointUrl: opts.endpoint,
          keyPrefix: opts.prefix,
          readOnly: opts.readOnly,
          region: opts.region,
          secret,
        });
        // Requester pays with credentials from AWS_* variables: the daemon config checks they are there.
        const mountOpts = { metadataTtlMs: opts.metadataTtlMs, requesterPays: opts.requesterPays, writeBack: opts.writeBack };
        if (opts.foreground) {
          const config = await bucketDaemonConfig(mount, dir, mountOpts);
          const { runBucketDaemon } = await import("../fuse/bucket/daemon.js");
          let failure: Error | undefined;
          await runBucketDaemon(config, (err) => {
            failure = err;
            if (!err) process.stdout.write(`Mounted s3://${bucketName}/${opts.prefix ?? ""} on ${config.mountPoint} (Ctrl-C to unmount)\n`);
          });
          if (failure) throw new SiloError(`Mount failed: ${failure.message}`, "MOUNT_FAILED");
          process.exit(0);
        }
        const handle = await mountCloudBucket(mount, dir, mountOpts).catch((err: Error) => {
          throw err instanceof SiloError ? err : new SiloError(`Mount failed: ${err.message}`, "MOUNT_FAILED");
        });
        process.stdout.write(`Mounted s3://${bucketName}/${opts.prefix ?? ""} on ${handle.mountPoint} (daemon pid ${handle.pid}, log ${handle.logFile})\n`);
      } finally {
        await silo?.close();
      }
    });

  bucket
    .command("unmount <dir>")
    .alias("umount")
    .description("Unmount a bucket: the daemon finishes uploads of open files and exits (also clears a stale mount)")
    .option("--timeout-ms <ms>", "how long to wait for the daemon before killing it", parseCount, 60_000)
    .action(async (dir: string, opts: { timeoutMs: number }) => {
      const { describeUnmount, unmountMountPoint } = await import("../fuse/common/unmount.js");
      const res = await unmountMountPoint(dir, { timeoutMs: opts.timeoutMs }).catch((err: Error) => {
        throw new SiloError(err.message, "UNMOUNT_FAILED");
      });
      process.stdout.write(`${describeUnmount(dir, res, opts.timeoutMs)}\n`);
    });
}
