import { homedir } from "node:os";
import { join } from "node:path";

/** Everything `silo serve` can be told. Durations are milliseconds. */
export interface ServerOptions {
  /** State root: data in `<home>/data`, client profile in `<home>/config.json`. */
  home: string;
  host: string;
  port: number;
  logLevel: string;
  /** An ephemeral object is deleted this long after its creator's last heartbeat. */
  ephemeralTimeoutMs: number;
  /** A Dict entry expires after this long without a read or write. */
  dictEntryTtlMs: number;
  /** Default for how long a queue partition lives after its last put (a put may ask for less or more). */
  queuePartitionTtlMs: number;
  /** Most non-empty partitions one queue may have. */
  queueMaxPartitions: number;
  /** Items a get served stay in flight this long awaiting the client's confirmation, then return to the head of their partition. */
  queueLeaseMs: number;
  /**
   * Test hooks (SILO_TEST_HOOKS=1 only): lets a request ask the server to hold its answer, so a
   * test can land a disconnect inside the window between a durable change and its answer.
   */
  testHooks: boolean;
  /** Volume versions younger than this stay readable (tree, delta); the latest always does. */
  volumeRetentionMs: number;
  /** Unreferenced volume blocks uploaded or reported present more recently than this are kept (an upload's commit may follow). */
  volumeBlockGraceMs: number;
  /** How often volume garbage collection runs. */
  volumeGcIntervalMs: number;
  /** A version pin (a mount's hold on the version it serves) lapses this long after its last renewal. */
  volumePinTtlMs: number;
  /** Bytes of encoded directory listings (of a volume at a version) kept in memory for the next mount of the same version; 0: none. */
  volumeListingCacheBytes: number;
  /** Where volume blocks live: `local` (under `<home>/data/blobs`) or `s3://bucket[/prefix]`. */
  blobs: string;
  /**
   * With local blobs: offer local block reads on `<home>/run/blocks.sock` (clients on this host
   * get a block's open file instead of its bytes over HTTP; docs/volumes.md, "Local block reads").
   */
  localBlocks: boolean;
  /** S3 endpoint for custom stores (R2, GCS, MinIO, Swift); default AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS. */
  s3Endpoint?: string;
  /** S3 region; default AWS_REGION, else us-east-1. */
  s3Region?: string;
  /** Largest request body (a Dict value may be up to 100 MiB, plus framing). */
  bodyLimit: number;
  /** `/readyz` answers 503 when the home's file system has less free space than this. */
  readyMinFreeBytes: number;
  /** `host:port` of a second listener serving only `/metrics`, without a token; unset: `/metrics` needs an admin token. */
  metricsListen?: string;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

export function defaultHome(): string {
  return process.env.SILO_HOME || join(homedir(), ".silo");
}

export function defaultServerOptions(): ServerOptions {
  return {
    home: defaultHome(),
    host: "127.0.0.1",
    port: 7070,
    logLevel: "info",
    ephemeralTimeoutMs: 5 * 60 * 1000,
    dictEntryTtlMs: 7 * DAY_MS,
    queuePartitionTtlMs: DAY_MS,
    queueMaxPartitions: 100_000,
    queueLeaseMs: 30_000,
    testHooks: process.env.SILO_TEST_HOOKS === "1",
    volumeRetentionMs: 60 * 60 * 1000,
    volumeBlockGraceMs: 60 * 60 * 1000,
    volumeGcIntervalMs: 5 * 60 * 1000,
    volumePinTtlMs: 2 * 60 * 1000,
    volumeListingCacheBytes: 64 * 1024 * 1024,
    blobs: "local",
    localBlocks: true,
    bodyLimit: 101 * 1024 * 1024,
    readyMinFreeBytes: 256 * 1024 * 1024,
  };
}
