import { mkdirSync, writeFileSync } from "node:fs";
import { lstat, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import type { Command } from "commander";
import type { FileEntry, Volume } from "../client/volume.js";
import { writevAll } from "../lib/writev-all.js";
import { ConflictError } from "../protocol/errors.js";
import { BLOCK_SIZE, SMALL_FILE_MAX } from "../protocol/volume.js";
import { confirm, deletedMessage, formatTime, parseCount, printJson, printTable, UsageError, withClient } from "./output.js";
import { byteProgress, formatBytes } from "./progress.js";

/** `silo volume …`: the same commands as the reference `modal volume`. `mount`/`unmount` live in their own file. */
export function registerVolume(program: Command): Command {
  const volume = program.command("volume").description("Create, inspect and transfer files to and from volumes");

  volume
    .command("create <name>")
    .description("Create a named, persistent volume")
    .option("--inode-limit <n>", "most files + directories + symlinks it may hold (default 500000)", parseCount)
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
    .option("--json", "machine-readable output")
    .action((name: string, path: string | undefined, opts: { json?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        const entries = await vol.listdir(path ?? "/");
        if (opts.json) return printJson(entries.map((e) => ({ ...e, mtime: e.mtime.toISOString() })));
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
    .addHelpText("after", "\nExamples:\n  silo volume put data ./model.bin            -> /model.bin\n  silo volume put data ./model.bin models/    -> /models/model.bin\n  silo volume put data ./dataset /datasets/a -> the directory's contents under /datasets/a")
    .action((name: string, local: string, remote: string | undefined, opts: { force?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        const st = await stat(local).catch(() => {
          throw new UsageError(`Local path '${local}' does not exist`);
        });
        const total = st.isDirectory() ? await treeBytes(local) : st.size;
        const progress = byteProgress(total, "Uploading");
        const batch = vol.batchUpload({ force: opts.force ?? false, onProgress: (n) => progress.add(n) });
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
    .action((name: string, remote: string, local: string | undefined, opts: { force?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
        await download(vol, remote, local ?? ".", opts.force ?? false);
      }),
    );

  volume
    .command("rm <name> <path>")
    .description("Delete a file or directory from a volume")
    .option("-r, --recursive", "delete a directory and everything in it")
    .action((name: string, path: string, opts: { recursive?: boolean }, cmd: Command) =>
      withClient(cmd, async (silo) => {
        const vol = await silo.volumes.fromName(name);
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

export async function treeBytes(dir: string): Promise<number> {
  const { readdir } = await import("node:fs/promises");
  let total = 0;
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) total += (await lstat(join(d.parentPath, d.name))).size;
  }
  return total;
}


const exists = (p: string) => lstat(p).then(() => true, () => false);

/**
 * `get` with `cp -r` semantics: a file lands at LOCAL (or inside it, if it is a directory);
 * a directory lands as LOCAL if that does not exist, else inside it. Every target is checked
 * before any byte is written, so without --force a conflict writes nothing.
 */
export async function download(vol: Volume, remote: string, local: string, force: boolean): Promise<void> {
  const listed = await vol.listdir(remote, { recursive: true });
  const norm = posix.normalize(`/${remote}`).replace(/^\/+|\/+$/g, "");
  const single = listed.length === 1 && listed[0]!.path === norm && listed[0]!.type !== "directory";
  if (local === "-") {
    if (!single || listed[0]!.type !== "file") throw new UsageError("'-' (stdout) works only for a single file");
    for await (const chunk of vol.readFile(norm)) if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once("drain", r));
    return;
  }
  const localIsDir = await stat(local).then((s) => s.isDirectory(), () => false);
  let root: string;
  if (single) root = localIsDir || local.endsWith("/") ? join(local, basename(norm)) : local;
  else root = localIsDir && norm !== "" ? join(local, basename(norm)) : local;
  const jobs: Array<{ entry: FileEntry; target: string }> = single
    ? [{ entry: listed[0]!, target: root }]
    : listed.map((e) => ({ entry: e, target: join(root, e.path.slice(norm === "" ? 0 : norm.length + 1)) }));
  // A fresh destination can not conflict; otherwise check every target before writing any.
  if (!force && (await exists(root))) {
    for (const j of jobs) if (j.entry.type !== "directory" && (await exists(j.target))) throw new UsageError(`'${j.target}' exists (use --force to overwrite)`);
  }
  const made = new Set<string>();
  const ensureDir = (d: string) => {
    if (!made.has(d)) mkdirSync(d, { recursive: true });
    made.add(d);
  };
  if (!single) ensureDir(root);
  const progress = byteProgress(jobs.reduce((n, j) => n + (j.entry.type === "file" ? j.entry.size : 0), 0), "Downloading");
  try {
    for (const j of jobs) if (j.entry.type === "directory") ensureDir(j.target);
    const files = jobs.filter((j) => j.entry.type === "file");
    // Small files travel many per request; large ones stream one by one. Symlinks are not recreated.
    const small = files.filter((j) => j.entry.size <= SMALL_FILE_MAX);
    const tasks: Array<() => Promise<void>> = files.filter((j) => j.entry.size > SMALL_FILE_MAX).map((j) => () => {
      ensureDir(dirname(j.target));
      return fetchFile(vol, j.entry, j.target, (n) => progress.add(n));
    });
    for (let i = 0; i < small.length; ) {
      const group: typeof small = [];
      for (let bytes = 0; i < small.length && group.length < 500 && bytes < 8 * SMALL_FILE_MAX; i++) {
        group.push(small[i]!);
        bytes += small[i]!.entry.size;
      }
      tasks.push(async () => {
        const got = await vol.readSmallFiles(group.map((j) => j.entry.path));
        for (const [k, j] of group.entries()) {
          ensureDir(dirname(j.target));
          // One sync write each: thousands of thread-pool round trips would cost more than the I/O.
          writeFileSync(j.target, got[k]!.data);
          progress.add(j.entry.size);
        }
      });
    }
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) await tasks[next++]!();
    };
    await Promise.all(Array.from({ length: 4 }, worker));
  } finally {
    progress.stop();
  }
}


/** Bytes each range request of a large download covers: one block, so each is one read on the server. */
const SEGMENT = BLOCK_SIZE;
/** Range requests in flight per large file. */
const DOWNLOAD_STREAMS = 6;

/**
 * Downloads one large file as block-sized ranges, several in flight, each written at its
 * offset with one gathering write (writev: no copy into a staging buffer), into a temp name
 * beside the target, then renamed into place: a failed download leaves no partial file.
 */
async function fetchFile(vol: Volume, entry: FileEntry, target: string, onBytes: (n: number) => void): Promise<void> {
  const tmp = `${target}.silo-part-${process.pid}`;
  const fh = await open(tmp, "w");
  try {
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (!failed && next < entry.size) {
        const start = next;
        const end = Math.min(start + SEGMENT, entry.size);
        next = end;
        const chunks: Buffer[] = [];
        let got = 0;
        for await (const chunk of vol.readFile(entry.path, { start, end })) {
          chunks.push(chunk);
          got += chunk.length;
        }
        if (got !== end - start) throw new ConflictError(`'${entry.path}' changed while it was downloaded`, "CONFLICT");
        await writevAll(fh, chunks, start);
        onBytes(got);
      }
    };
    await Promise.all(
      Array.from({ length: DOWNLOAD_STREAMS }, () =>
        worker().catch((err: unknown) => {
          failed = true;
          throw err;
        }),
      ),
    );
    await fh.close();
    await rename(tmp, target);
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
