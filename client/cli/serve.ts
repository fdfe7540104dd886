import type { Command } from "commander";

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a non-negative number: ${v}`);
  return n;
};

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("Run the silo server on the embedded default stores (SQLite, LMDB, local disk) under SILO_HOME")
    .option("--port <port>", "TCP port to listen on (0 picks a free one)", int, 7070)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--home <dir>", "state directory (default $SILO_HOME, else ~/.silo)")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace", "info")
    .option("--dict-entry-ttl-ms <ms>", "Dict entries expire after this long without a read or write (default 7 days)", int)
    .option("--ephemeral-timeout-ms <ms>", "delete an ephemeral object this long after its last heartbeat", int)
    .option("--volume-retention-ms <ms>", "keep volume versions this long for deltas and old trees (default 1 hour; the latest is always kept)", int)
    .option("--volume-block-grace-ms <ms>", "keep unreferenced volume blocks this long after their upload or last use (default 1 hour)", int)
    .option("--volume-gc-interval-ms <ms>", "run volume garbage collection this often (default 5 minutes)", int)
    .addHelpText("after", "\nOn first start it creates the 'default' workspace, an admin token, and the client\nprofile $SILO_HOME/config.json that the CLI and client library use.")
    .action(async (opts: Record<string, string | number | undefined>) => {
      // Loaded lazily: the client-only commands never pay for the server's modules.
      const { startServer } = await import("../../services/server.js");
      const { defaultServerOptions } = await import("../../services/options.js");
      const defaults = defaultServerOptions();
      await startServer({
        ...defaults,
        home: (opts.home as string | undefined) ?? defaults.home,
        host: opts.host as string,
        port: opts.port as number,
        logLevel: opts.logLevel as string,
        dictEntryTtlMs: (opts.dictEntryTtlMs as number | undefined) ?? defaults.dictEntryTtlMs,
        ephemeralTimeoutMs: (opts.ephemeralTimeoutMs as number | undefined) ?? defaults.ephemeralTimeoutMs,
        volumeRetentionMs: (opts.volumeRetentionMs as number | undefined) ?? defaults.volumeRetentionMs,
        volumeBlockGraceMs: (opts.volumeBlockGraceMs as number | undefined) ?? defaults.volumeBlockGraceMs,
        volumeGcIntervalMs: Math.max(50, (opts.volumeGcIntervalMs as number | undefined) ?? defaults.volumeGcIntervalMs),
      });
    });
}
