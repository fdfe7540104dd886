import { type Command, InvalidArgumentError } from "commander";

const int = (v: string) => {
  const n = Number(v);
  // Commander reports this as "option '--port <port>' argument 'x' is invalid. …", one line.
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError("Expected a non-negative number.");
  return n;
};

const port = (v: string) => {
  const n = int(v);
  if (!Number.isInteger(n) || n > 65535) throw new InvalidArgumentError("Expected a TCP port, 0 to 65535.");
  return n;
};

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("Run the silo server on the embedded default stores (SQLite, LMDB, local disk) under SILO_HOME")
    .option("--port <port>", "TCP port to listen on (0 picks a free one)", port, 7070)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--home <dir>", "state directory (default $SILO_HOME, else ~/.silo)")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace", "info")
    .option("--dict-entry-ttl-ms <ms>", "Dict entries expire after this long without a read or write (default 7 days)", int)
    .option("--queue-partition-ttl-ms <ms>", "a queue partition expires this long after its last put, unless the put says otherwise (default 24 h; lower it to test expiry)", int)
    .option("--queue-max-partitions <n>", "most non-empty partitions per queue (default 100000)", int)
    .option("--queue-lease-ms <ms>", "items a queue get served return to the head of their partition unless the client confirms receipt within this long (default 30 s)", int)
    .option("--ephemeral-timeout-ms <ms>", "delete an ephemeral object this long after its last heartbeat", int)
    .option("--volume-retention-ms <ms>", "keep volume versions this long for deltas and old trees (default 1 hour; the latest is always kept)", int)
    .option("--volume-block-grace-ms <ms>", "keep unreferenced volume blocks this long after their upload or last use (default 1 hour)", int)
    .option("--volume-gc-interval-ms <ms>", "run volume garbage collection this often (default 5 minutes)", int)
    .option("--volume-pin-ttl-ms <ms>", "a mount's pin on the volume version it serves lapses this long after its last renewal (default 2 minutes; mounts renew every third of it)", int)
    .option("--volume-listing-cache-mib <mib>", "keep this many MiB of encoded directory listings in memory: the next mount of the same volume version lists without SQLite reads (default 64; 0 turns it off)", int)
    .option("--blobs <where>", "where volume blocks live: 'local' (under SILO_HOME) or 's3://bucket[/prefix]' (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)", "local")
    .option("--no-local-blocks", "with local blobs, do not offer clients on this host local block reads and writes (a block's file, or a put's source file, passed as an open descriptor over the unix sockets <home>/run/blocks.sock and blocks-put.sock instead of its bytes over HTTP)")
    .option("--s3-endpoint <url>", "S3 endpoint for R2, GCS, MinIO, … (default $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else AWS); clients must reach it too")
    .option("--s3-region <region>", "S3 region (default $AWS_REGION, else us-east-1)")
    .option("--metrics-listen <host:port>", "also serve GET /metrics without a token on this address (e.g. 127.0.0.1:9464); without it /metrics needs an admin token")
    .option("--ready-min-free-bytes <bytes>", "/readyz answers 503 when the home's file system has less free space than this (default 268435456, 256 MiB)", int)
    .addHelpText("after", "\nOn first start it creates the 'default' workspace, an admin token, and the client\nprofile $SILO_HOME/config.json that the CLI and client library use.\n\nVolume blocks in an S3-compatible bucket (AWS S3, R2, GCS, MinIO, Swift; see docs/volumes.md):\n  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... silo serve --blobs s3://my-bucket/silo --s3-endpoint https://...\nClients then read and write block data straight from/to the bucket with URLs the server signs.")
    .action(async (opts: Record<string, string | number | undefined>) => {
      // Loaded lazily: the client-only commands never pay for the server's modules.
      const { startServer } = await import("../services/server.js");
      const { defaultServerOptions } = await import("../services/options.js");
      const defaults = defaultServerOptions();
      await startServer({
        ...defaults,
        home: (opts.home as string | undefined) ?? defaults.home,
        host: opts.host as string,
        port: opts.port as number,
        logLevel: opts.logLevel as string,
        dictEntryTtlMs: (opts.dictEntryTtlMs as number | undefined) ?? defaults.dictEntryTtlMs,
        queuePartitionTtlMs: (opts.queuePartitionTtlMs as number | undefined) ?? defaults.queuePartitionTtlMs,
        queueMaxPartitions: (opts.queueMaxPartitions as number | undefined) ?? defaults.queueMaxPartitions,
        queueLeaseMs: Math.max(50, (opts.queueLeaseMs as number | undefined) ?? defaults.queueLeaseMs),
        ephemeralTimeoutMs: (opts.ephemeralTimeoutMs as number | undefined) ?? defaults.ephemeralTimeoutMs,
        volumeRetentionMs: (opts.volumeRetentionMs as number | undefined) ?? defaults.volumeRetentionMs,
        volumeBlockGraceMs: (opts.volumeBlockGraceMs as number | undefined) ?? defaults.volumeBlockGraceMs,
        volumePinTtlMs: Math.max(100, (opts.volumePinTtlMs as number | undefined) ?? defaults.volumePinTtlMs),
        volumeListingCacheBytes:
          opts.volumeListingCacheMib === undefined ? defaults.volumeListingCacheBytes : Math.max(0, opts.volumeListingCacheMib as number) * 1024 * 1024,
        blobs: opts.blobs as string,
        localBlocks: (opts.localBlocks as unknown) !== false,
        s3Endpoint: opts.s3Endpoint as string | undefined,
        s3Region: opts.s3Region as string | undefined,
        volumeGcIntervalMs: Math.max(50, (opts.volumeGcIntervalMs as number | undefined) ?? defaults.volumeGcIntervalMs),
        readyMinFreeBytes: (opts.readyMinFreeBytes as number | undefined) ?? defaults.readyMinFreeBytes,
        metricsListen: opts.metricsListen as string | undefined,
      });
    });
}
