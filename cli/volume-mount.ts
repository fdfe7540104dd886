import { mkdirSync, openSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { SiloError } from "../protocol/errors.js";
import { clientFor, parseCount, printJson, printTable, UsageError } from "./output.js";

const DEFAULT_COMMIT_INTERVAL_MS = 5_000;
const DEFAULT_CACHE_MB = 4_096;


interface MountOptions {
  readOnly?: boolean;
  commitIntervalMs: number;
  cacheSizeMb: number;
  foreground?: boolean;
  stateDir?: string;
  exitWithParent?: boolean;
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
    .option("--state-dir <dir>", "where the upper dir, block cache and control socket live (default: under $TMPDIR/silo-mounts)")
    .addOption(new Option("--exit-with-parent", "with --foreground: commit and unmount when the parent process dies").hideHelp())
    .addHelpText(
      "after",
      `
Changes are written locally and committed every --commit-interval-ms, on 'silo volume unmount',
and on SIGTERM. Other mounts see them after their next reload. A daemon killed with kill -9
leaves a dead mount: the next mount at DIR (or 'silo volume unmount DIR') clears it.`,
    )
    .action(async (name: string, dir: string, opts: MountOptions, cmd: Command) => {
      const silo = clientFor(cmd);
      if (opts.foreground) {
        // FUSE ops run as libuv file-system work: more threads than the default 4 keep many in flight.
        process.env.UV_THREADPOOL_SIZE ??= "16";
        const { runVolumeDaemon } = await import("../fuse/volume/daemon.js");
        const { reportToParent } = await import("../fuse/common/daemon-process.js");
        const volume = await silo.volumes.fromName(name).catch((err: Error) => {
          reportToParent({ error: err.message });
          throw err;
        });
        const code = await runVolumeDaemon(volume.blocks, {
          dir,
          readOnly: opts.readOnly ?? false,
          commitIntervalMs: opts.commitIntervalMs,
          cacheBytes: opts.cacheSizeMb * 1024 * 1024,
          stateDir: opts.stateDir,
          exitWithParent: opts.exitWithParent,
        });
        await silo.close();
        process.exit(code);
      }
      await silo.close();
      const { spawnDaemon } = await import("../fuse/common/daemon-process.js");
      const { stateDirFor } = await import("../fuse/volume/daemon.js");
      const stateDir = resolve(opts.stateDir ?? stateDirFor(dir));
      const logFile = `${stateDir}.log`;
      const args = ["volume", "mount", name, dir, "--foreground", "--state-dir", stateDir];
      args.push("--commit-interval-ms", String(opts.commitIntervalMs), "--cache-size-mb", String(opts.cacheSizeMb));
      if (opts.readOnly) args.push("--read-only");
      mkdirSync(join(stateDir, ".."), { recursive: true });
      const { child, ready } = await spawnDaemon(process.argv[1]!, args, {
        env: { ...process.env, SILO_ENVIRONMENT: silo.config.environment, SILO_MOUNT_LOG: logFile },
        output: openSync(logFile, "a"),
        logFile,
        detached: true,
      }).catch((err: Error) => {
        throw new SiloError(`Could not mount volume '${name}' at ${resolve(dir)}: ${err.message}`, "MOUNT_FAILED");
      });
      child.unref();
      process.stdout.write(`Mounted volume '${name}' (version ${String(ready.version)}) at ${resolve(dir)}; log: ${logFile}\n`);
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
      process.stdout.write(`${describeUnmount(dir, res, opts.timeoutMs)}\n`);
    });

  volume
    .command("status [dir]")
    .description("Show a volume mount's state: version, pending changes, last commit and its error, cache hit ratio, bytes fetched (without DIR: every volume mount of this user, one line each)")
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
