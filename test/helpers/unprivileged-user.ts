import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { lazyUnmount, mountedPaths } from "../../fuse/common/mount-table.js";
import { REPO, SILO_BIN, type CliResult } from "./silo-server.js";

const run = promisify(execFile);

/** The full path of a command (the user's PATH may differ from ours). */
function onPath(cmd: string): string {
  const dir = (process.env.PATH ?? "/usr/bin:/bin").split(":").find((d) => existsSync(join(d, cmd)));
  if (!dir) throw new Error(`${cmd} not found (util-linux)`);
  return join(dir, cmd);
}

/** The user the non-root tests act as when the suite runs as root (as CI does): `nobody`. */
const NOBODY = 65534;

/**
 * A user without CAP_SYS_ADMIN that owns a fresh home (HOME, SILO_HOME, TMPDIR and the mount
 * run dir all inside it), so FUSE mounts it makes must go through fusermount3. As root, its
 * commands run under `setpriv --reuid/--regid=nobody --clear-groups`. If the checkout is not
 * reachable by others (a clone under /root), the user sees it through a read-only bind mount
 * under /tmp, removed by `cleanup()`. Run as another user, that user is it.
 */
export class UnprivilegedUser {
  readonly uid: number;
  readonly gid: number;
  private readonly wrap: string[];
  /** The checkout as the user reaches it (REPO, or a bind mount of it). */
  repo = REPO;
  private repoView?: string;

  private constructor(
    readonly home: string,
    private readonly baseEnv: NodeJS.ProcessEnv,
  ) {
    const root = process.getuid?.() === 0;
    this.uid = root ? NOBODY : process.getuid!();
    this.gid = root ? NOBODY : process.getgid!();
    this.wrap = root ? [onPath("setpriv"), `--reuid=${this.uid}`, `--regid=${this.gid}`, "--clear-groups"] : [];
  }

  static async create(): Promise<UnprivilegedUser> {
    const home = mkdtempSync(join(tmpdir(), "silo-user-"));
    // mkdtemp makes it 0700: whoever the user is, it must be theirs.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      SILO_HOME: join(home, ".silo"),
      TMPDIR: home,
      SILO_MOUNT_RUN_DIR: join(home, "run"),
    };
    const user = new UnprivilegedUser(home, env);
    if (process.getuid?.() === 0) {
      chownSync(home, user.uid, user.gid);
      // What Debian's udev rule does (scripts/system-deps.sh too): fusermount3 opens it as the user.
      if ((statSync("/dev/fuse").mode & 0o666) !== 0o666) chmodSync("/dev/fuse", 0o666);
      if (!(await user.canRead(REPO))) {
        const view = mkdtempSync(join(tmpdir(), "silo-repo-view-"));
        chmodSync(view, 0o755);
        await run("mount", ["--bind", "-o", "ro", REPO, view]);
        user.repoView = view;
        if (!(await user.canRead(view))) throw new Error(`${REPO} is not readable by uid ${user.uid} (chmod o+rx it)`);
        user.repo = view;
      }
    }
    return user;
  }

  private async canRead(repo: string): Promise<boolean> {
    return (await this.run("test", ["-r", join(repo, "bin/silo.js"), "-a", "-r", join(repo, "dist/cli/main.js")])).code === 0;
  }

  /** A directory the user owns, for a mount point. */
  dir(name: string): string {
    const d = join(this.home, name);
    mkdirSync(d, { recursive: true });
    if (process.getuid?.() === 0) chownSync(d, this.uid, this.gid);
    return d;
  }

  /** Starts `cmd args` as the user (stdio piped), with its own environment plus `env`. */
  spawn(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
    const argv = [...this.wrap, cmd, ...args];
    return spawn(argv[0]!, argv.slice(1), { env: { ...this.baseEnv, ...env }, stdio: "pipe", cwd: this.home });
  }

  /** A path of the checkout (REPO/...) as the user reaches it. */
  path(repoPath: string): string {
    return join(this.repo, relative(REPO, repoPath));
  }

  /** Runs `cmd args` as the user, with its own environment plus `env`. */
  run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const proc = this.spawn(cmd, args, env);
      proc.stdin.end();
      let stdout = "";
      let stderr = "";
      proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      proc.once("error", reject);
      proc.once("close", (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** A shell command as the user (the mount is theirs alone: the test process may not reach it). */
  sh(script: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return this.run("sh", ["-c", script], env);
  }

  /** The real CLI as the user. */
  silo(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return this.run(process.execPath, [this.path(SILO_BIN), ...args], env);
  }

  /** Detaches whatever is still mounted in the home (after a failure), then removes it. */
  async cleanup(): Promise<void> {
    for (const dir of await mountedPaths()) if (dir.startsWith(`${this.home}/`)) await lazyUnmount(dir).catch(() => {});
    rmSync(this.home, { recursive: true, force: true });
    if (this.repoView) {
      await run("umount", [this.repoView]).catch(() => run("umount", ["-l", this.repoView!]));
      rmdirSync(this.repoView);
    }
  }
}
