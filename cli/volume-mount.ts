import { mkdirSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { VolumeDaemonConfig } from "../fuse/volume/config.js";
import { DEFAULT_INODE_CACHE } from "../fuse/volume/inode-cache.js";
import { stateDirFor } from "../fuse/volume/state-dir.js";
import { SiloError } from "../protocol/errors.js";
import { clientFor, configFor, parseCount, printJson, printTable, UsageError } from "./output.js";

const DEFAULT_COMMIT_INTERVAL_MS = 5_000;
const DEFAULT_CACHE_MB = 4_096;

export interface MountOptions {
  readOnly?: boolean;
  commitIntervalMs: number;
  cacheSizeMb: number;
  foreground?: boolean;
  stateDir?: string;
  finalCommitRetryMs?: number;
}

const KIND_NAMES = { volume: "volume", nfs: "network file system" } as const;

/**
 * `silo volume mount` and `silo nfs mount`: one config, served by the kind's daemon
 * (fuse/<kind>/main.ts) in the background, or in this process with --foreground.
 */
export async function mountFileTree(kind: "volume" | "nfs", name: string, dir: string, opts: MountOptions, cmd: Command): Promise<void> {
  const stateDir = resolve(opts.stateDir ?? stateDirFor(dir));
  const config: VolumeDaemonConfig = {
    client: configFor(cmd),
    volume: name,
    mountPoint: resolve(dir),
    readOnly: opts.readOnly ?? false,
    commitIntervalMs: opts.commitIntervalMs,
    cacheBytes: opts.cacheSizeMb * 1024 * 1024,
    stateDir,
    finalCommitRetryMs: opts.finalCommitRetryMs,
  };
  if (opts.foreground) {
    // FUSE ops run as libuv file-system work: more threads than the default 4 keep many in flight.
    process.env.UV_THREADPOOL_SIZE ??= "16";
    const serve =
      kind === "volume" ? (await import("../fuse/volume/daemon.js")).serveVolumeMount : (await import("../fuse/nfs/daemon.js")).serveNfsMount;
    process.exit(await serve(config));
  }
  const { spawnVolumeDaemon } = await import("../fuse/volume/mount.js");
  const logFile = `${stateDir}.log`;
  mkdirSync(join(stateDir, ".."), { recursive: true });
  const what = KIND_NAMES[kind];
  const { child, ready } = await spawnVolumeDaemon(kind, config, { output: openSync(logFile, "a", 0o600), logFile, detached: true }).catch((err: Error) => {
    throw new SiloError(`Could not mount ${what} '${name}' at ${config.mountPoint}: ${err.message}`, "MOUNT_FAILED");
  });
  child.unref();
  const version = kind === "volume" ? ` (version ${String(ready.version)})` : "";
  process.stdout.write(`Mounted ${what} '${name}'${version} at ${config.mountPoint}; log: ${logFile}\n`);
}

/** The `volume` command, created if the volumes CLI has not (it adds ls/put/get/…). */
function volumeCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === "volume") ?? program.command("volume").description("Manage volumes");
}

/** Adds `silo volume mount` and `silo volume unmount`. */
export function registerVolumeMount(program: Command): void {
  const volume = volumeCommand(program);
  volume
    .command("mount <name> <dir>")
    .description("Mount the latest version of a volume at DIR (a FUSE daemon in the background)")
    .option("--read-only", "every write fails with EROFS")
    .option("--commit-interval-ms <ms>", "background commit period (0: only the final commit on unmount)", parseCount, DEFAULT_COMMIT_INTERVAL_MS)
    .option("--cache-size-mb <mb>", "bound on the local block cache", parseCount, DEFAULT_CACHE_MB)
    .option("--foreground", "serve the mount in this process until SIGTERM/SIGINT instead of in a background daemon")
    .option("--final-commit-retry-ms <ms>", "how long the final commit retries a server that is down or restarting", parseCount, 60_000)
    .option("--state-dir <dir>", "where the block cache and control socket live (default: under $TMPDIR/silo-mounts); local changes live in the journal ($SILO_JOURNAL_DIR)")
    .addHelpText(
      "after",
      `
Changes are written locally and committed every --commit-interval-ms, on 'silo volume unmount',
and on SIGTERM. Other mounts see them after their next reload. Until a commit holding them is
acknowledged they are kept in a journal on this machine ($SILO_JOURNAL_DIR, default
$SILO_HOME/journals): a failed final commit or a daemon killed with kill -9 loses nothing that
was closed or fsync'd; the next mount of the volume here (or 'silo volume recover NAME') commits
it. A killed daemon leaves a dead mount: the next mount at DIR (or 'silo volume unmount DIR')
clears it.

The tree is read from the server directory by directory as it is used; at most
$SILO_INODE_CACHE entries of it (default ${DEFAULT_INODE_CACHE.toLocaleString("en")}) stay in memory, the least recently used
unchanged directories are dropped and read again when needed (docs/mounts.md).

On a --read-only mount, a committed file read through once whose blocks are all in the local
cache is copied whole into the cache (within --cache-size-mb), and later opens of it are served
by the kernel from that copy (FUSE passthrough); SILO_WHOLE_FILE_CACHE=off turns this off.`,
    )
    .action((name: string, dir: string, opts: MountOptions, cmd: Command) => mountFileTree("volume", name, dir, opts, cmd));

  for (const op of ["commit", "reload"] as const) {
    volume
      .command(`${op} <dir>`)
      .description(
        op === "commit"
          ? "Commit the pending changes of the volume mounted at DIR now (instead of at the next background commit)"
          : "Switch the volume mounted at DIR to the latest version (commits its pending changes first; fails while files are open)",
      )
      .action(async (dir: string) => {
        const { readMountRecord, processAlive } = await import("../fuse/common/mount-records.js");
        const { controlRequest } = await import("../client/mount-control.js");
        const record = await readMountRecord(dir);
        if (record?.kind !== "volume" || !record.socket || !processAlive(record.pid)) {
          throw new UsageError(`No silo volume mount at ${resolve(dir)} (in this mount namespace)`);
        }
        const r = await controlRequest<{ version: number; changes?: number }>(record.socket, op);
        process.stdout.write(
          op === "commit"
            ? `Committed ${resolve(dir)}: ${r.changes ?? 0} change(s), volume version ${r.version}\n`
            : `Reloaded ${resolve(dir)}: now at version ${r.version}\n`,
        );
      });
  }

  volume
    .command("recover <name>")
    .description("Commit the changes that mounts of a volume on this machine could not commit (kept in their journals)")
    .addHelpText(
      "after",
      `
A mount keeps every change in a journal on this machine until a commit holding it is
acknowledged (under $SILO_JOURNAL_DIR, default $SILO_HOME/journals). If the final commit failed
(server down, volume full) or the daemon was killed, the next mount of the volume here commits
those changes; this command does it without mounting. Exits 1 if they still cannot be committed
(they stay kept).`,
    )
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const silo = await clientFor(cmd);
      const { recoverVolume } = await import("../fuse/volume/recover.js");
      const volume = await silo.volumes.fromName(name);
      const log = (m: string) => process.stderr.write(`${m}\n`);
      try {
        const r = await recoverVolume(volume.blocks, { server: silo.config.serverUrl, environment: silo.config.environment, log });
        process.stdout.write(
          r.journals === 0
            ? `Nothing to recover for volume '${name}' on this machine\n`
            : `Recovered ${r.journals} journal(s) of volume '${name}': ${r.changes} change(s) committed as version ${r.version}\n`,
        );
      } finally {
        await silo.close();
      }
    });

  volume
    .command("unmount <dir>")
    .alias("umount")
    .description("Commit pending changes and unmount a volume mounted with 'silo volume mount'")
    .option("--timeout-ms <ms>", "how long to wait for the final commit before detaching anyway", parseCount, 300_000)
    .action(async (dir: string, opts: { timeoutMs: number }) => {
      const { describeUnmount, unmountMountPoint } = await import("../fuse/common/unmount.js");
      // Slow final commit: detach, but let the daemon finish it (killing it would lose the changes).
      const res = await unmountMountPoint(dir, { timeoutMs: opts.timeoutMs, onTimeout: "detach" }).catch((err: Error) => {
        throw new UsageError(err.message);
      });
      if (res.pendingJournal) {
        process.stderr.write(`${describeUnmount(dir, res, opts.timeoutMs)}\n`);
        process.exit(1);
      }
      process.stdout.write(`${describeUnmount(dir, res, opts.timeoutMs)}\n`);
    });

  volume
    .command("status [dir]")
    .description("Show a volume mount's state: version, the version its pin keeps, pending changes, last commit and its error, cache hit ratio, bytes fetched (without DIR: every volume mount of this user, one line each)")
    .option("--json", "print the daemon's status report as JSON")
    .action(async (dir: string | undefined, opts: { json?: boolean }) => {
      const { allMountStatuses, mountStatus, describeMountStatus } = await import("./mount-status.js");
      if (dir !== undefined) {
        const status = await mountStatus(dir);
        if (opts.json) printJson(status);
        else process.stdout.write(describeMountStatus(status));
        return;
      }
      const all = await allMountStatuses();
      if (opts.json) return printJson(all);
      if (all.length === 0) return void process.stdout.write("No volume mounts.\n");
      printTable(
        ["DIR", "VOLUME", "VERSION", "PENDING", "COMMITS", "LAST COMMIT ERROR"],
        all.map(({ dir: d, status: s, error }) =>
          s
            ? [d, s.volume ?? s.volumeId, s.version, s.dirtyPaths, `${s.commits?.commits ?? "?"} (${s.commits?.failures ?? "?"} failed)`, s.lastCommitError ?? ""]
            : [d, "?", "?", "?", "?", `no answer: ${error}`],
        ),
      );
    });
}
