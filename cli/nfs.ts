import { mkdirSync } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { type Command, Option } from "commander";
import { isGlob } from "../client/glob.js";
import { confirm, deletedMessage, formatTime, parseCount, printJson, printTable, UsageError, withClient } from "./output.js";
import { byteProgress, formatBytes } from "./progress.js";
import { download, treeBytes } from "./volume.js";
import { type MountOptions, mountFileTree } from "./volume-mount.js";

const DEFAULT_CACHE_MB = 4_096;
/** A safety net for files held open for writing a long time; every close commits anyway. */
const DEFAULT_COMMIT_INTERVAL_MS = 5_000;

/** `silo nfs …`: the reference's `modal nfs` commands, plus `mount`/`unmount`. */
export function registerNfs(program: Command): void {
  const nfs = program
    .command("nfs")
    .description("Network file systems: shared directories without commit/reload (a write is visible to the next open anywhere)");

  nfs
    .command("create <name>")
    .description("Create a named network file system")
    .option("--inode-limit <n>", "most files + directories + symlinks it may hold (default 10000000)", parseCount)
    .action((name: string, opts: { inodeLimit?: number }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await silo.networkFileSystems.objects.create(name, { options: opts.inodeLimit === undefined ? {} : { inodeLimit: opts.inodeLimit } });
        process.stdout.write(`Created network file system '${name}'\n`);
      }),
    );

  nfs
    .command("list")
    .description("List the network file systems of the environment, newest first")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const all = await silo.networkFileSystems.objects.list();
        if (opts.json) return printJson(all.map((n) => ({ name: n.name, id: n.id, createdAt: n.createdAt.toISOString() })));
        printTable(["Name", "Created at"], all.map((n) => [n.name ?? "", formatTime(n.createdAt)]));
      }),
    );

  nfs
    .command("ls <name> [path]")
    .description("List a directory (names relative to it), a file, or the matches of a glob ('**/*.csv', paths from the root)")
    .option("--json", "machine-readable output")
    .action((name: string, path: string | undefined, opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const fs = await silo.networkFileSystems.fromName(name);
        const entries = await fs.listdir(path ?? "/");
        if (opts.json) return printJson(entries.map((e) => ({ ...e, mtime: e.mtime.toISOString() })));
        printTable(
          ["Filename", "Type", "Modified", "Size"],
          entries.map((e) => [e.type === "directory" ? `${e.path}/` : e.path, e.type, formatTime(e.mtime), e.type === "file" ? formatBytes(e.size) : ""]),
        );
      }),
    );

  nfs
    .command("put <name> <local> [remote]")
    .description("Upload a file or directory, replacing what is there (REMOTE ending in '/' means into that directory; parents are created)")
    .addHelpText("after", "\nExamples:\n  silo nfs put shared ./data.csv             -> /data.csv\n  silo nfs put shared ./data.csv in/         -> /in/data.csv\n  silo nfs put shared ./dataset /datasets/a  -> the directory's contents under /datasets/a")
    .action((name: string, local: string, remote: string | undefined, _opts: unknown, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const fs = await silo.networkFileSystems.fromName(name);
        const st = await stat(local).catch(() => {
          throw new UsageError(`Local path '${local}' does not exist`);
        });
        const progress = byteProgress(st.isDirectory() ? await treeBytes(local) : st.size, "Uploading");
        try {
          const target = remote ?? "/";
          if (st.isDirectory()) await fs.addLocalDir(local, target, { onProgress: (n) => progress.add(n) });
          else await fs.addLocalFile(local, target.endsWith("/") ? posix.join(target, basename(local)) : target, { onProgress: (n) => progress.add(n) });
        } finally {
          progress.stop();
        }
      }),
    );

  nfs
    .command("get <name> <remote> [local]")
    .description("Download a file or directory; a glob ('**', '*.csv') downloads every matching file with its directories; LOCAL '-' writes one file to stdout")
    .option("--force", "overwrite existing local files")
    .addHelpText("after", '\nExample: the whole file system into ./dump\n  silo nfs get shared "**" dump')
    .action((name: string, remote: string, local: string | undefined, opts: { force?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const fs = await silo.networkFileSystems.fromName(name);
        const dest = local ?? ".";
        if (!isGlob(remote)) return download(fs.treeHandle(), remote, dest, opts.force ?? false);
        if (dest === "-") throw new UsageError("'-' (stdout) works only for a single file, not a glob");
        const files = (await fs.listdir(remote)).filter((e) => e.type === "file");
        const exists = (p: string) => stat(p).then(() => true, () => false);
        if (!opts.force) for (const f of files) if (await exists(join(dest, f.path))) throw new UsageError(`'${join(dest, f.path)}' exists (use --force to overwrite)`);
        for (const f of files) {
          mkdirSync(dirname(join(dest, f.path)), { recursive: true });
          await download(fs.treeHandle(), f.path, join(dest, f.path), true);
        }
      }),
    );

  nfs
    .command("rm <name> <path>")
    .description("Delete a file or directory")
    .option("-r, --recursive", "delete a directory and everything in it")
    .action((name: string, path: string, opts: { recursive?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const fs = await silo.networkFileSystems.fromName(name);
        await fs.removeFile(path, { recursive: opts.recursive ?? false });
      }),
    );

  nfs
    .command("delete <name>")
    .description("Delete a named network file system and all its files (irreversible)")
    .option("--allow-missing", "no error if it does not exist")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { allowMissing?: boolean; yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Delete network file system '${name}' and all its files? This can not be undone.`, opts.yes);
        const existed = await silo.networkFileSystems.delete(name, { allowMissing: opts.allowMissing ?? false });
        process.stdout.write(deletedMessage("network file system", name, existed));
      }),
    );

  nfs
    .command("mount <name> <dir>")
    .description("Mount a network file system at DIR (a FUSE daemon in the background): writes reach the server when a file is closed")
    .option("--read-only", "every write fails with EROFS")
    .option("--cache-size-mb <mb>", "bound on the local block cache", parseCount, DEFAULT_CACHE_MB)
    .option("--foreground", "serve the mount in this process until SIGTERM/SIGINT instead of in a background daemon")
    .option("--state-dir <dir>", "where local writes, the block cache and the control socket live (default: under $TMPDIR/silo-mounts)")
    .addOption(new Option("--commit-interval-ms <ms>", "also send changes of files still open every N ms").argParser(parseCount).default(DEFAULT_COMMIT_INTERVAL_MS).hideHelp())
    .addHelpText(
      "after",
      `
Close-to-open consistency, as NFS: close() (and fsync()) returns once the file's changes are
on the server; every open (and every lookup of a name this mount does not know, and every
directory listing) first catches up with the server, so it sees what any job closed before.
No commit or reload. See docs/nfs.md.`,
    )
    .action((name: string, dir: string, opts: MountOptions, cmd: Command) => mountFileTree("nfs", name, dir, opts, cmd));

  nfs
    .command("unmount <dir>")
    .alias("umount")
    .description("Send what is still open for writing, then unmount a network file system mounted with 'silo nfs mount'")
    .option("--timeout-ms <ms>", "how long to wait for the last changes before detaching anyway", parseCount, 300_000)
    .action(async (dir: string, opts: { timeoutMs: number }) => {
      const { describeUnmount, unmountMountPoint } = await import("../fuse/common/unmount.js");
      const res = await unmountMountPoint(dir, { timeoutMs: opts.timeoutMs, onTimeout: "detach" }).catch((err: Error) => {
        throw new UsageError(err.message);
      });
      process.stdout.write(`${describeUnmount(dir, res, opts.timeoutMs)}\n`);
    });
}
