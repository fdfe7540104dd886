/** Everything a bucket mount daemon is told by whoever launches it (sent as JSON on its stdin). */
export interface BucketDaemonConfig {
  bucket: string;
  mountPoint: string;
  /** Key prefix the mount is confined to: "" (whole bucket) or ending in "/". */
  prefix: string;
  readOnly: boolean;
  requesterPays: boolean;
  /** Custom S3 endpoint (R2, GCS, MinIO, Swift …); path-style addressing is used with it. Absent: AWS. */
  endpoint?: string;
  region: string;
  /** Absent: the AWS SDK's default chain (env, ~/.aws, instance metadata). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** How long listings and lookups are trusted before S3 is asked again (default 1000 ms). */
  metadataTtlMs?: number;
  /** Finish uploads in the background after close (fsync still waits); see BucketFsOptions.writeBack. */
  writeBack?: boolean;
  /** Multipart part size for uploads (default 8 MiB; S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /** Stop (drain, unmount) when the process that started the daemon dies (`silo run` killed hard). */
  exitWithParent?: boolean;
}

export const DEFAULT_METADATA_TTL_MS = 1000;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const MIN_PART_SIZE = 5 * 1024 * 1024;
