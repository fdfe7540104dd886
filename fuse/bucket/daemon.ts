import { clearStaleMount, lazyUnmount } from "../common/mount-table.js";
import { mountAccessNote, mountFuse } from "../kernel/mount.js";
import { serveUntilStopped, survivesLogFailures } from "../common/daemon-runtime.js";
import { BucketFs } from "./bucket-fs.js";
import { BucketS3 } from "./bucket-s3.js";
import { BucketFuseOps, bucketErrno } from "./fuse-ops.js";
import type { BucketDaemonConfig } from "./config.js";
import { makeS3Client } from "../../lib/s3-client.js";

/** How long a stop waits for pending uploads (under `silo bucket unmount`'s default 60 s). */
const DRAIN_TIMEOUT_MS = 45_000;

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} bucket-mount: ${msg}\n`);

/** `s3://bucket/prefix/` for logs and mount records. */
export const bucketSource = (c: Pick<BucketDaemonConfig, "bucket" | "prefix" | "endpoint">) =>
  `s3://${c.bucket}/${c.prefix}${c.endpoint ? ` at ${c.endpoint}` : ""}`;

/**
 * Mounts the bucket and serves it until stopped. `onReady` is called once the kernel has the
 * mount (or with the error that prevented it). Resolves when the daemon has unmounted.
 */
export async function runBucketDaemon(config: BucketDaemonConfig, onReady: (err?: Error) => void): Promise<void> {
  survivesLogFailures();
  const s3client = makeS3Client({ endpoint: config.endpoint, region: config.region, credentials: config.credentials });
  const s3 = new BucketS3(s3client, config.bucket, config.requesterPays);
  const fs = new BucketFs(s3, { prefix: config.prefix, readOnly: config.readOnly, metadataTtlMs: config.metadataTtlMs, partSizeBytes: config.partSizeBytes, writeBack: config.writeBack, log });

  try {
    // Fail before mounting if the bucket is unreachable or the credentials are wrong.
    await s3.hasKeysUnder(config.prefix).catch((err: Error) => {
      throw new Error(`cannot list ${bucketSource(config)}: ${err.message}`);
    });
    if (await clearStaleMount(config.mountPoint)) log(`cleared a stale mount at ${config.mountPoint} (its daemon had died)`);
    const ttlMs = config.metadataTtlMs ?? 1000;
    const mount = await mountFuse(
      config.mountPoint,
      new BucketFuseOps(fs, { readOnly: config.readOnly, ttlMs, log }),
      { fsname: "silo-bucket", subtype: "silo-bucket", allowOther: true },
      {
        // O_TRUNC reaches open(): a truncating open starts a new upload at once.
        atomicOTrunc: true,
        // Objects may change in the bucket: a changed mtime or size drops cached pages.
        autoInvalData: true,
        // S3 calls can be slow; the SDK has its own timeouts and retries.
        opTimeoutMs: 180_000,
        errno: bucketErrno(log),
        log: (m) => log(`fuse: ${m}`),
      },
    );
    const access = mountAccessNote(mount);
    if (access) log(access);
  } catch (err) {
    log(`mount of ${bucketSource(config)} on ${config.mountPoint} failed: ${(err as Error).message}`);
    onReady(err as Error);
    s3client.destroy();
    return;
  }
  log(`mounted ${bucketSource(config)} on ${config.mountPoint}${config.readOnly ? " (read-only)" : ""}`);
  const daemon = await serveUntilStopped({
    record: { mountPoint: config.mountPoint, kind: "bucket", source: bucketSource(config) },
    exitWithParent: config.exitWithParent,
    log,
    shutdown: async (_why, mounted) => {
      // Drain first: files closed just before the signal still have releases queued in the
      // kernel, which an unmount would drop (with their uploads).
      if (mounted) {
        await fs.drain(DRAIN_TIMEOUT_MS).catch((err: Error) => log(`drain failed: ${err.message}`));
        await lazyUnmount(config.mountPoint).catch((err: Error) => log(`unmount failed: ${err.message}`));
      }
      await fs.abortPending().catch((err: Error) => log(`abort failed: ${err.message}`));
      return 0;
    },
  });
  onReady();
  await daemon.done;
  s3client.destroy();
}
