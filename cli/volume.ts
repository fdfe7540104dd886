import { lstat, stat } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import type { Command } from "commander";
import type { FileEntry } from "../client/volume.js";
import type { VersionInfo } from "../protocol/volume.js";
import { confirm, deletedMessage, formatTime, parseCount, printJson, printTable, UsageError, withClient } from "./output.js";
import { byteProgress, formatBytes } from "./progress.js";
import { PRESERVE_ITEMS, download, majorMinor, parseNoPreserve } from "./volume-get.js";

export { download } from "./volume-get.js";

const NO_PRESERVE_HELP = `do not keep these (comma-separated): ${PRESERVE_ITEMS.join(", ")}, or all (ownership is kept only when run as root)`;

/** `silo volume …`: the same commands as the reference `modal volume`. `mount`/`unmount` live in their own file. */
export function registerVolume(program: Command): Command {
  const volume = program.command("volume").description("Create, inspect and transfer files to and from volumes");

  volume
    .command("create <name>")
    .description("Create a named, persistent volume")
    .option("--inode-limit <n>", "most files + directories + symlinks it may hold (default 10000000)", parseCount)
    .action((name: string, opts: { inodeLimit?: number }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await silo.volumes.objects.create(name, { options: opts.inodeLimit === undefined ? {} : { inodeLimit: opts.inodeLimit } });
        process.stdout.write(`Created volume '${name}'.\n`);
      }),
    );

  volume
    .command("list")
    .description("List the volumes of the environment, newest first")
    .option("--json", "machine-readable output")
    .action((opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vols = await silo.volumes.objects.list();
        if (opts.json) return printJson(vols.map((v) => ({ name: v.name, id: v.id, createdAt: v.createdAt.toISOString() })));
        printTable(["Name", "Created at"], vols.map((v) => [v.name ?? "", formatTime(v.createdAt)]));
      }),
    );

  volume
    .command("ls <name> [path]")
    .description("List files and directories in a volume (a file path lists just that file)")
    .option("-l, --long", "one line per entry as `ls -l`: mode, owner, group, size, mtime, name (-> target)")
    .option("--json", "machine-readable output (times in ns as decimal strings)")
    .action((name: string, path: string | undefined, opts: { json?: boolean; long?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        const entries = await vol.listdir(path ?? "/");
        if (opts.json) return printJson(entries.map(jsonEntry));
        if (opts.long) return printLong(entries);
        printTable(
          ["Filename", "Type", "Created/Modified", "Size"],
          entries.map((e) => [e.type === "directory" ? `${e.path}/` : e.path, e.type, formatTime(e.mtime), e.type === "file" ? formatBytes(e.size) : ""]),
        );
      }),
    );

  volume
    .command("put <name> <local> [remote]")
    .description("Upload a file or directory to a volume (REMOTE ending in '/' means into that directory; parents are created)")
    .option("-f, --force", "overwrite existing files")
    .option("--no-preserve <list>", NO_PRESERVE_HELP)
    .addHelpText("after", "\nLike `cp -a`: modes, ns times, symlinks, hard links, fifos and devices are kept (owners too when run as root).\n\nExamples:\n  silo volume put data ./model.bin            -> /model.bin\n  silo volume put data ./model.bin models/    -> /models/model.bin\n  silo volume put data ./dataset /datasets/a -> the directory's contents under /datasets/a")
    .action((name: string, local: string, remote: string | undefined, opts: { force?: boolean; preserve?: string | boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        const st = await stat(local).catch(() => {
          throw new UsageError(`Local path '${local}' does not exist`);
        });
        const total = st.isDirectory() ? await treeBytes(local) : st.size;
        const progress = byteProgress(total, "Uploading");
        const preserve = parseNoPreserve(opts.preserve);
        const batch = vol.batchUpload({ force: opts.force ?? false, onProgress: (n) => progress.add(n), preserve });
        const target = remote ?? "/";
        if (st.isDirectory()) batch.putDirectory(local, target);
        else batch.putFile(local, target.endsWith("/") ? posix.join(target, basename(local)) : target);
        try {
          await batch.commit();
        } finally {
          progress.stop();
        }
      }),
    );

  volume
    .command("get <name> <remote> [local]")
    .description("Download a file or directory (recursively) from a volume; LOCAL '-' writes a file to stdout")
    .option("--force", "overwrite existing local files")
    .option("--no-preserve <list>", NO_PRESERVE_HELP)
    .addHelpText("after", "\nLike `cp -a`: modes, times, symlinks, hard links and fifos are recreated (devices and owners only when run as root;\ntimes are set to about the microsecond, the precision of Node's utimes).")
    .action((name: string, remote: string, local: string | undefined, opts: { force?: boolean; preserve?: string | boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        await download(vol, remote, local ?? ".", opts.force ?? false, parseNoPreserve(opts.preserve));
      }),
    );

  volume
    .command("rm <name> <path>")
    .description("Delete a file or directory from a volume")
    .option("-r, --recursive", "delete a directory and everything in it")
    .option("-y, --yes", "do not ask before emptying the whole volume (rm -r NAME /)")
    .action((name: string, path: string, opts: { recursive?: boolean; yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        if (opts.recursive && isRoot(path)) {
          const { version } = await vol.info();
          await confirm(
            `Remove every file of volume '${name}'? Until retention drops it, 'silo volume restore ${name} --version ${version}' brings it back.`,
            opts.yes,
          );
        }
        await vol.removeFile(path, { recursive: opts.recursive ?? false });
      }),
    );

  volume
    .command("cp <name> <paths...>")
    .description("Copy within a volume: SRC DST, or SRC... DIR (server-side; copies share blocks)")
    .option("-r, --recursive", "copy directories recursively")
    .action((name: string, paths: string[], opts: { recursive?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        if (paths.length < 2) throw new UsageError("cp needs at least one source and a destination");
        const vol = await silo.volumes.fromName(name);
        await vol.copyFiles(paths.slice(0, -1), paths[paths.length - 1]!, { recursive: opts.recursive ?? false });
      }),
    );

  volume
    .command("history <name> [path]")
    .description("List the volume's retained versions, newest first: when, which token, what changed (with PATH: only versions that changed it)")
    .option("--limit <n>", "at most this many versions (default 20)", parseCount)
    .option("--json", "machine-readable output")
    .action((name: string, path: string | undefined, opts: { limit?: number; json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        const { versions } = await vol.history({ path, limit: opts.limit ?? 20 });
        if (opts.json) return printJson(versions.map((v) => ({ ...v, createdAt: new Date(v.createdAt).toISOString() })));
        printTable(
          ["Version", "Committed at", "Token", "Changes"],
          versions.map((v) => [v.version, formatTime(v.createdAt), v.tokenId ?? "", describeChanges(v)]),
        );
      }),
    );

  volume
    .command("restore <name> [path]")
    .description("Bring a path (default: the whole volume) back to what it was in a retained version, as a new commit")
    .requiredOption("--version <v>", "the version to restore from (see 'silo volume history')", parseCount)
    .action((name: string, path: string | undefined, opts: { version: number }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        const res = await vol.restore(opts.version, path);
        const what = path ? `'${path}'` : "the volume";
        if (res.changes === 0) process.stdout.write(`Nothing to restore: ${what} is as it was in version ${opts.version}.
`);
        else process.stdout.write(`Restored ${what} to version ${opts.version} as version ${res.version} (${res.changes} ${res.changes === 1 ? "path" : "paths"} changed).
`);
      }),
    );

  volume
    .command("fork <name> <new>")
    .description("Create volume NEW holding a retained version of NAME (default: the latest); no data is copied, blocks are shared")
    .option("--version <v>", "the version to fork (see 'silo volume history')", parseCount)
    .action((name: string, newName: string, opts: { version?: number }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const fork = await silo.volumes.fork(name, newName, { version: opts.version });
        const { version, inodes } = await fork.info();
        process.stdout.write(`Created volume '${newName}' from '${name}'${opts.version === undefined ? "" : ` at version ${opts.version}`} (${inodes} entries, version ${version}).
`);
      }),
    );

  volume
    .command("rename <old> <new>")
    .description("Rename a volume")
    .option("-y, --yes", "do not ask for confirmation")
    .action((oldName: string, newName: string, opts: { yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Rename volume '${oldName}' to '${newName}'? Jobs using the old name will no longer find it.`, opts.yes);
        await silo.volumes.rename(oldName, newName);
        process.stdout.write(`Renamed volume '${oldName}' to '${newName}'.\n`);
      }),
    );

  volume
    .command("delete <name>")
    .description("Delete a named volume and all of its data (irreversible)")
    .option("--allow-missing", "no error if the volume does not exist")
    .option("-y, --yes", "do not ask for confirmation")
    .action((name: string, opts: { allowMissing?: boolean; yes?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        await confirm(`Delete volume '${name}' and all its files? This can not be undone.`, opts.yes);
        process.stdout.write(deletedMessage("volume", name, await silo.volumes.delete(name, { allowMissing: opts.allowMissing ?? false })));
      }),
    );

  return volume;
}

/** Whether a volume path names the root ("/", "", ".", "//"). */
const isRoot = (path: string) => path.split("/").every((part) => part === "" || part === ".");

/** "put 2: /a, /b" and "removed 1: /c" lines for a history row (the first paths of each kind). */
function describeChanges(v: VersionInfo): string {
  const parts: string[] = [];
  if (v.put.count) parts.push(`put ${v.put.count}: ${sample(v.put.paths, v.put.count)}`);
  if (v.removed.count) parts.push(`removed ${v.removed.count}: ${sample(v.removed.paths, v.removed.count)}`);
  if (v.note) parts.unshift(`(${v.note})`);
  if (v.partial) parts.push("(older changes no longer retained)");
  return parts.join("\n") || (v.version === 0 ? "(created)" : "");
}

function sample(paths: string[], count: number): string {
  const shown = paths.slice(0, 3).map((p) => `/${p}`);
  return count > shown.length ? `${shown.join(", ")}, … ${count - shown.length} more` : shown.join(", ");
}

export async function treeBytes(dir: string): Promise<number> {
  const { readdir } = await import("node:fs/promises");
  let total = 0;
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) total += (await lstat(join(d.parentPath, d.name))).size;
  }
  return total;
}

/** `--json` of an entry: bigint ns times as decimal strings, xattr values as base64. */
function jsonEntry(e: FileEntry): Record<string, unknown> {
  const xattrs = e.xattrs && Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString("base64")]));
  return { ...e, mtime: e.mtime.toISOString(), mtimeNs: String(e.mtimeNs), atimeNs: String(e.atimeNs), ctimeNs: String(e.ctimeNs), ...(xattrs ? { xattrs } : {}) };
}

const TYPE_CHAR: Record<FileEntry["type"], string> = { file: "-", directory: "d", symlink: "l", fifo: "p", socket: "s", char: "c", block: "b" };

/** `ls -l`'s mode string: type, then rwx for owner, group, others with setuid/setgid/sticky as s/S, s/S, t/T. */
export function modeString(type: FileEntry["type"], mode: number): string {
  const bits = (shift: number, special: boolean, ch: string) => {
    const x = (mode >> shift) & 1;
    const exec = special ? (x ? ch : ch.toUpperCase()) : x ? "x" : "-";
    return `${(mode >> (shift + 2)) & 1 ? "r" : "-"}${(mode >> (shift + 1)) & 1 ? "w" : "-"}${exec}`;
  };
  return TYPE_CHAR[type] + bits(6, (mode & 0o4000) !== 0, "s") + bits(3, (mode & 0o2000) !== 0, "s") + bits(0, (mode & 0o1000) !== 0, "t");
}

/** `ls -l` lines: mode, uid, gid, size (devices: major, minor), mtime, name, `-> target` for symlinks. */
function printLong(entries: FileEntry[]): void {
  const rows = entries.map((e) => {
    const size = e.type === "char" || e.type === "block" ? majorMinor(e.rdev ?? 0).join(", ") : String(e.size);
    const name = e.type === "symlink" ? `${e.path} -> ${e.target ?? ""}` : e.type === "directory" ? `${e.path}/` : e.path;
    return [modeString(e.type, e.mode), String(e.uid), String(e.gid), size, formatTime(e.mtime), name];
  });
  const width = (i: number) => Math.max(0, ...rows.map((r) => r[i]!.length));
  const widths = [0, 1, 2, 3].map(width);
  for (const r of rows) {
    process.stdout.write(`${r[0]} ${r[1]!.padStart(widths[1]!)} ${r[2]!.padStart(widths[2]!)} ${r[3]!.padStart(widths[3]!)} ${r[4]} ${r[5]}\n`);
  }
}
