import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import type { JobMount } from "../client/mount-control.js";
import { SILO_MOUNTS_ENV } from "../client/mount-control.js";
import { checkMountPaths, collectMounts, type MountSpec } from "./mount-spec.js";
import type { ClientConfig } from "../client/config.js";
import { clientFor, configFor, parseCount, UsageError } from "./output.js";

/** The volume daemons' block cache bound in a job (as `silo volume mount`'s default). */
const DEFAULT_CACHE_BYTES = 4096 * 1024 * 1024;

/** Set in the re-executed `silo run` that already lives in its own mount namespace. */
const IN_NAMESPACE_ENV = "SILO_RUN_PRIVATE_NS";
const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

interface RunOptions {
  volume?: MountSpec[];
  bucket?: MountSpec[];
  nfs?: MountSpec[];
  secret?: string;
  hostMounts?: boolean;
  commitIntervalMs?: string;
  finalCommitRetryMs?: string;
}

interface ActiveMount {
  spec: MountSpec;
  record: JobMount;
  /** Final commit (volumes) and unmount; resolves with the daemon's exit status (0 = clean). */
  stop(): Promise<number>;
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("Run a command with volumes, network file systems and buckets mounted: mount, run, commit, unmount")
    .usage("[options] -- <command> [args...]")
    .option("-v, --volume <NAME:/path[:ro]>", "mount a volume at /path (repeatable; ':ro' for read-only)", collectMounts("volume"))
    .option("--nfs <NAME:/path[:ro]>", "mount a network file system at /path (repeatable; close-to-open: no commit needed)", collectMounts("nfs"))
    .option(
      "-b, --bucket <BUCKET[/prefix/]:/path[:ro]>",
      "mount an S3 bucket (or a key prefix of it) at /path (repeatable); credentials from the spec's ':secret=NAME', else --secret, else AWS_* variables",
      collectMounts("bucket"),
    )
    .option("--secret <name>", "silo secret with the bucket credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) of every -b mount without its own")
    .option("--commit-interval-ms <ms>", "background commit period of the volume mounts", "5000")
    .option("--final-commit-retry-ms <ms>", "how long the volume mounts' final commits retry a server that is down or restarting", "60000")
    .option("--host-mounts", "mount in the host's mount namespace (visible to other processes) instead of a private one")
    .argument("<command...>", "the command to run")
    .addHelpText(
      "after",
      `
The command gets ${SILO_MOUNTS_ENV} (JSON: mount path -> {kind, name, id, environment, readOnly,
socket}) and the server credentials in its environment, so Volume.commit()/reload() in it act on
its mounts. Signals are forwarded to it. When it exits, every mount commits and unmounts, and
silo run exits with the command's status (1 if it succeeded but a final commit failed: the
changes are then kept on this machine, and the next mount of the volume or 'silo volume
recover NAME' commits them).
As root, mounts live in a private mount namespace (unshare), so the host never sees them.`,
    )
    .action(async (command: string[], opts: RunOptions, cmd: Command) => {
      const specs = [...(opts.volume ?? []), ...(opts.nfs ?? []), ...(opts.bucket ?? [])];
      checkMountPaths(specs);
      if (specs.length > 0 && !opts.hostMounts && !process.env[IN_NAMESPACE_ENV] && privateNamespaceWorks()) {
        process.exit(await reexecInNamespace());
      }
      process.exit(await runJob(command, specs, opts, cmd));
    });
}

/** Whether `unshare --mount` works here (root, or CAP_SYS_ADMIN; not in every container). */
function privateNamespaceWorks(): boolean {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("unshare", ["--mount", "--propagation", "private", "true"], { stdio: "ignore" }).status === 0;
}

/** Runs this same `silo run` again inside a new private mount namespace. */
async function reexecInNamespace(): Promise<number> {
  const signals = holdSignals();
  const child = spawn("unshare", ["--mount", "--propagation", "private", "--", process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, [IN_NAMESPACE_ENV]: "1" },
  });
  signals.forwardTo(child);
  return waitForChild(child).finally(signals.release);
}

async function runJob(command: string[], specs: MountSpec[], opts: RunOptions, cmd: Command): Promise<number> {
  const config = configFor(cmd);
  const mounts: ActiveMount[] = [];
  try {
    for (const spec of specs) {
      mounts.push(
        spec.kind === "bucket" ? await mountBucket(spec, config.environment, spec.secret ?? opts.secret, cmd) : await mountVolume({ ...spec, kind: spec.kind }, config, opts),
      );
    }
  } catch (err) {
    await unmountAll(mounts);
    throw err;
  }
  const records = Object.fromEntries(mounts.map((m) => [m.spec.path, m.record]));
  const signals = holdSignals();
  const child = spawn(command[0]!, command.slice(1), {
    stdio: "inherit",
    env: {
      ...process.env,
      [IN_NAMESPACE_ENV]: undefined,
      SILO_SERVER_URL: config.serverUrl,
      SILO_TOKEN_ID: config.tokenId,
      SILO_TOKEN_SECRET: config.tokenSecret,
      SILO_ENVIRONMENT: config.environment,
      [SILO_MOUNTS_ENV]: JSON.stringify(records),
    },
  });
  // Re-executed under unshare: if the outer `silo run` is killed hard, end the command so the mounts commit and go.
  const parent = process.ppid;
  const orphanWatch = process.env[IN_NAMESPACE_ENV]
    ? setInterval(() => process.ppid !== parent && child.kill("SIGTERM"), 1_000)
    : undefined;
  signals.forwardTo(child);
  const code = await waitForChild(child).catch((err: Error) => {
    process.stderr.write(`Error: cannot run '${command[0]}': ${err.message}\n`);
    return 127;
  });
  signals.release();
  clearInterval(orphanWatch);
  const unmountFailed = await unmountAll(mounts);
  return code === 0 && unmountFailed ? 1 : code;
}

/** A volume (or network file system) mount through its daemon. */
async function mountVolume(spec: MountSpec & { kind: "volume" | "nfs" }, config: ClientConfig, opts: RunOptions): Promise<ActiveMount> {
  const { spawnVolumeDaemon } = await import("../fuse/volume/mount.js");
  const environment = config.environment;
  let createdDir: string | undefined;
  try {
    mkdirSync(spec.path);
    // In a private mount namespace the directory stays: it is on the host's file system, and
    // Linux detaches every other namespace's mount on a directory that is removed, so a
    // concurrent job with the same mount path would lose its mount (and write to the bare
    // directory) the moment this job cleaned up.
    if (!process.env[IN_NAMESPACE_ENV]) createdDir = spec.path;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") mkdirSync(spec.path, { recursive: true });
  }
  const stateDir = mkdtempSync(join(tmpdir(), "silo-run-"));
  try {
    // Daemon messages go to our stderr, keeping the command's stdout its own.
    // Its own process group: a Ctrl-C meant for the command must not unmount under it.
    const { child, ready } = await spawnVolumeDaemon(
      spec.kind,
      {
        client: config,
        volume: spec.name,
        mountPoint: spec.path,
        readOnly: spec.readOnly,
        commitIntervalMs: parseCount(opts.commitIntervalMs ?? "5000"),
        finalCommitRetryMs: parseCount(opts.finalCommitRetryMs ?? "60000"),
        cacheBytes: DEFAULT_CACHE_BYTES,
        stateDir: join(stateDir, "m"),
        exitWithParent: true,
      },
      { output: 2, detached: true },
    );
    const record: JobMount = {
      kind: spec.kind,
      name: spec.name,
      id: String(ready.volumeId),
      environment,
      readOnly: spec.readOnly,
      socket: String(ready.socket),
    };
    const stop = async () => {
      const exited = waitForChild(child);
      child.kill("SIGTERM");
      const code = await exited.catch(() => 1);
      rmSync(stateDir, { recursive: true, force: true });
      if (createdDir) {
        try {
          rmdirSync(createdDir);
        } catch {
          // Not empty or still busy: leave it.
        }
      }
      return code;
    };
    return { spec, record, stop };
  } catch (err) {
    rmSync(stateDir, { recursive: true, force: true });
    if (createdDir) rmdirSync(createdDir);
    throw new UsageError(`Could not mount ${spec.kind} '${spec.name}' at ${spec.path}: ${(err as Error).message}`);
  }
}

/** A bucket mount through the bucket daemon (fuse/bucket), credentials from a silo secret or the AWS_* environment. */
async function mountBucket(spec: MountSpec, environment: string, secretName: string | undefined, cmd: Command): Promise<ActiveMount> {
  const { mountCloudBucket } = await import("../fuse/bucket/mount.js");
  const { CloudBucketMount } = await import("../client/cloud-bucket-mount.js");
  const silo = secretName ? await clientFor(cmd) : undefined;
  try {
    const secret = silo && secretName ? await silo.secrets.fromName(secretName) : undefined;
    const bucket = new CloudBucketMount(spec.name, { keyPrefix: spec.keyPrefix, readOnly: spec.readOnly, secret });
    const handle = await mountCloudBucket(bucket, spec.path, { readOnly: spec.readOnly, exitWithParent: true });
    const record: JobMount = { kind: "bucket", name: spec.name, id: spec.name, environment, readOnly: spec.readOnly };
    return { spec, record, stop: () => handle.unmount().then(() => 0, () => 1) };
  } catch (err) {
    throw new UsageError(`Could not mount bucket '${spec.name}' at ${spec.path}: ${(err as Error).message}`);
  } finally {
    await silo?.close();
  }
}

/** Stops every mount (volumes commit first); returns true if any did not finish cleanly. */
async function unmountAll(mounts: ActiveMount[]): Promise<boolean> {
  const codes = await Promise.all(
    mounts.map(async (m) => {
      const code = await m.stop();
      if (code !== 0) process.stderr.write(`silo run: the mount of '${m.spec.name}' at ${m.spec.path} did not finish cleanly (exit ${code})\n`);
      return code;
    }),
  );
  return codes.some((c) => c !== 0);
}

/**
 * Catches our forwardable signals from before the child is spawned: a child can start and be
 * seen (its first output) before spawn() returns here, and a signal in that window must not
 * kill us with the default action. Signals caught before `forwardTo` are delivered then.
 */
function holdSignals(): { forwardTo(child: ChildProcess): void; release(): void } {
  let target: ChildProcess | undefined;
  const held: NodeJS.Signals[] = [];
  const forward = (sig: NodeJS.Signals) => (target ? target.kill(sig) : held.push(sig));
  for (const sig of FORWARDED) process.on(sig, forward);
  return {
    forwardTo(child) {
      target = child;
      for (const sig of held.splice(0)) child.kill(sig);
    },
    release() {
      for (const sig of FORWARDED) process.off(sig, forward);
    },
  };
}

/** Resolves with the child's exit status (128+n for a signal, like a shell). */
function waitForChild(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1)));
  });
}
