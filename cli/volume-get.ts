import { closeSync, mkdirSync, writeFileSync } from "node:fs";
import { type FileHandle, chmod, lchown, link, lstat, lutimes, open, rename, stat, symlink, unlink } from "node:fs/promises";
import { basename, dirname, join, posix } from "node:path";
import { promisify } from "node:util";
import type { LocalBlockFile } from "../client/local-blocks.js";
import { forEachLimit } from "../client/limit.js";
import type { FileEntry, Volume } from "../client/volume.js";
import { writevAll } from "../lib/writev-all.js";
import { ConflictError } from "../protocol/errors.js";
import { LOCAL_BLOCKS } from "../protocol/local-blocks.js";
import { BLOCK_SIZE, SMALL_FILE_MAX, expandBlocks } from "../protocol/volume.js";
import { UsageError } from "./output.js";
import { byteProgress } from "./progress.js";

/** Runs a command (child_process is loaded on first use: most downloads make no special file). */
async function run(file: string, args: string[]): Promise<unknown> {
  const { execFile } = await import("node:child_process");
  return promisify(execFile)(file, args);
}

/** What `put` and `get` keep, like `cp -a`; `--no-preserve=LIST` turns items off. */
export interface Keep {
  mode: boolean;
  /** Owner and group: only when run as root (others can not give files away). */
  ownership: boolean;
  timestamps: boolean;
  /** Hard links stay one inode with several names. */
  links: boolean;
}

export const PRESERVE_ITEMS = ["mode", "ownership", "timestamps", "links"] as const;

/** `--no-preserve=mode,links` (commander hands `true` when the flag is absent); `all` turns every item off. */
export function parseNoPreserve(value: string | boolean | undefined): Keep {
  const off = new Set(typeof value === "string" ? value.split(",").map((s) => s.trim()).filter(Boolean) : []);
  for (const item of off) {
    if (item !== "all" && !(PRESERVE_ITEMS as readonly string[]).includes(item)) {
      throw new UsageError(`--no-preserve takes a comma-separated list of ${PRESERVE_ITEMS.join(", ")} or all (got '${item}')`);
    }
  }
  const keep = (item: (typeof PRESERVE_ITEMS)[number]) => !off.has(item) && !off.has("all");
  return { mode: keep("mode"), ownership: keep("ownership") && isRoot(), timestamps: keep("timestamps"), links: keep("links") };
}

const isRoot = () => process.getuid?.() === 0;

const exists = (p: string) => lstat(p).then(() => true, () => false);

/** Linux's encoding of a device number (new_encode_dev) as major and minor. */
export function majorMinor(rdev: number): [number, number] {
  return [(rdev >>> 8) & 0xfff, (rdev & 0xff) | ((rdev >>> 12) & 0xfff00)];
}

const warn = (msg: string) => process.stderr.write(`Warning: ${msg}\n`);

/**
 * Recreates a special file with the system's own commands (Node has no mkfifo or mknod): fifos
 * always, devices as root; sockets are never recreated (nothing listens on them). Returns
 * whether the node exists now.
 */
async function makeSpecial(entry: FileEntry, target: string): Promise<boolean> {
  let argv: string[];
  if (entry.type === "fifo") argv = ["mkfifo", "--", target];
  else if ((entry.type === "char" || entry.type === "block") && isRoot()) {
    argv = ["mknod", "--", target, entry.type === "char" ? "c" : "b", ...majorMinor(entry.rdev ?? 0).map(String)];
  } else {
    warn(`skipped ${entry.type} '${entry.path}' (${entry.type === "socket" ? "sockets are not recreated" : "devices are made only as root"})`);
    return false;
  }
  try {
    await run(argv[0]!, argv.slice(1));
    return true;
  } catch (err) {
    warn(`skipped ${entry.type} '${entry.path}': ${argv[0]} failed (${(err as Error).message.split("\n")[0]})`);
    return false;
  }
}

/** Gives a downloaded node its stored metadata, as `keep` says: owner first (chown clears setuid), then mode, then times. */
async function applyMeta(entry: FileEntry, target: string, keep: Keep): Promise<void> {
  if (keep.ownership) await lchown(target, entry.uid, entry.gid);
  if (keep.mode && entry.type !== "symlink") await chmod(target, entry.mode);
  if (keep.timestamps) {
    await lutimes(target, utimesSeconds(entry.atimeNs), utimesSeconds(entry.mtimeNs));
  }
}

const floorDiv = (a: bigint, b: bigint): bigint => (a % b !== 0n && a < 0n !== b < 0n ? a / b - 1n : a / b);

/**
 * Node sets times from a double of seconds and libuv cuts them to the microsecond (toward zero):
 * aim at the middle of the nearest microsecond, so the double's error (~0.2 µs at today's dates)
 * cannot carry the cut into the one before. The time set is within 0.5 µs of `ns`.
 */
function utimesSeconds(ns: bigint): number {
  const us = floorDiv(ns + 500n, 1000n);
  const s = floorDiv(us, 1_000_000n);
  return Number(s) + (Number(us - s * 1_000_000n) + (ns < 0n ? -0.5 : 0.5)) / 1e6;
}

/**
 * `get` with `cp -r` semantics: a file lands at LOCAL (or inside it, if it is a directory);
 * a directory lands as LOCAL if that does not exist, else inside it. Every target is checked
 * before any byte is written, so without --force a conflict writes nothing. Like `cp -a`,
 * symlinks, fifos (and devices, as root) are recreated, hard links stay links, and modes,
 * times (and owners, as root) are kept unless `keep` says otherwise.
 */
export async function download(vol: Volume, remote: string, local: string, force: boolean, keep: Keep = parseNoPreserve(undefined)): Promise<void> {
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
  const dirsMade = new Set<string>();
  const ensureDir = (d: string) => {
    if (!dirsMade.has(d)) mkdirSync(d, { recursive: true });
    dirsMade.add(d);
  };
  if (!single) ensureDir(root);
  // Hard links: the first name of each inode is downloaded, the others linked to it.
  const firstName = new Map<string, string>();
  const linked: Array<{ entry: FileEntry; target: string; to: string }> = [];
  const files: typeof jobs = [];
  for (const j of jobs) {
    if (j.entry.type === "directory") continue;
    const to = keep.links && j.entry.linkId !== undefined ? firstName.get(j.entry.linkId) : undefined;
    if (to !== undefined) linked.push({ ...j, to });
    else {
      if (keep.links && j.entry.linkId !== undefined) firstName.set(j.entry.linkId, j.target);
      if (j.entry.type === "file") files.push(j);
    }
  }
  const progress = byteProgress(files.reduce((n, j) => n + j.entry.size, 0), "Downloading");
  try {
    for (const j of jobs) if (j.entry.type === "directory") ensureDir(j.target);
    await fetchAll(vol, files, ensureDir, (n) => progress.add(n));
  } finally {
    progress.stop();
  }
  const done: typeof jobs = [...files];
  const linkedTargets = new Set(linked.map((l) => l.target));
  for (const j of jobs) {
    if (j.entry.type === "directory" || j.entry.type === "file" || linkedTargets.has(j.target)) continue;
    ensureDir(dirname(j.target));
    if (force) await unlink(j.target).catch(() => {});
    if (j.entry.type === "symlink") {
      await symlink(j.entry.target ?? "", j.target);
      done.push(j);
    } else if (await makeSpecial(j.entry, j.target)) done.push(j);
  }
  const made = new Set(done.map((d) => d.target));
  for (const l of linked) {
    if (!made.has(l.to)) continue; // its first name was skipped
    ensureDir(dirname(l.target));
    if (force) await unlink(l.target).catch(() => {});
    await link(l.to, l.target);
  }
  for (const j of done) await applyMeta(j.entry, j.target, keep);
  // Directories last and deepest first: writing into a directory moves its mtime.
  const dirs = jobs.filter((j) => j.entry.type === "directory").reverse();
  for (const j of dirs) await applyMeta(j.entry, j.target, keep);
}

/** Small files travel many per request; large ones stream one by one. */
async function fetchAll(vol: Volume, files: Array<{ entry: FileEntry; target: string }>, ensureDir: (d: string) => void, onBytes: (n: number) => void): Promise<void> {
  const small = files.filter((j) => j.entry.size <= SMALL_FILE_MAX);
  const tasks: Array<() => Promise<void>> = files.filter((j) => j.entry.size > SMALL_FILE_MAX).map((j) => () => {
    ensureDir(dirname(j.target));
    return fetchFile(vol, j.entry, j.target, onBytes);
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
        onBytes(j.entry.size);
      }
    });
  }
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** Bytes each range request of a large download covers: one block, so each is one read on the server. */
const SEGMENT = BLOCK_SIZE;
/** Range requests in flight per large file (each with a SEGMENT buffer of its own). */
const DOWNLOAD_STREAMS = 6;

/**
 * Downloads one large file as block-sized ranges, several in flight, each received straight
 * into a buffer of its request's own (reused from range to range) and written at its offset,
 * into a temp name beside the target, then renamed into place: a failed download leaves no
 * partial file. The first range is fetched alone: the version it was read from is the one
 * every other range reads, so the file can not mix two versions.
 */
async function fetchFile(vol: Volume, entry: FileEntry, target: string, onBytes: (n: number) => void): Promise<void> {
  const tmp = `${target}.silo-part-${process.pid}`;
  const fh = await open(tmp, "w");
  try {
    if (await fetchLocal(vol, entry, fh, onBytes)) {
      await fh.close();
      await rename(tmp, target);
      return;
    }
    let version: number | undefined;
    const fetchRange = async (buf: Buffer, start: number) => {
      const end = Math.min(start + SEGMENT, entry.size);
      const got = await vol.readFileInto(entry.path, { start, end, version }, buf);
      if (got.bytes !== end - start) throw new ConflictError(`'${entry.path}' changed while it was downloaded`, "CONFLICT");
      await writevAll(fh, [buf.subarray(0, got.bytes)], start);
      onBytes(got.bytes);
      return got.version;
    };
    const first = Buffer.allocUnsafe(Math.min(SEGMENT, entry.size));
    version = await fetchRange(first, 0);
    let next = SEGMENT;
    let failed = false;
    const worker = async (buf: Buffer | undefined) => {
      while (!failed && next < entry.size) {
        const start = next;
        next = Math.min(start + SEGMENT, entry.size);
        buf ??= Buffer.allocUnsafe(SEGMENT);
        await fetchRange(buf, start);
      }
    };
    await Promise.all(
      Array.from({ length: DOWNLOAD_STREAMS }, (_, i) =>
        worker(i === 0 ? first : undefined).catch((err: unknown) => {
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

/** Blocks copied at once by a local download (each a copy_file_range on the thread pool). */
const LOCAL_STREAMS = 4;
/** Blocks the first request of a local download asks for: few, so the copies start soon; later ones ask for LOCAL_BLOCKS.maxBlocks. */
const LOCAL_FIRST_BATCH = 2;

/**
 * Local block reads (client/local-blocks.ts): with the server on this host, each block is
 * copied into the file straight from the server's blob file (copy_file_range), not over HTTP.
 * The blocks are those of one version's entry of the file (looked up first), so the file can not
 * mix two versions. They are asked for in batches (one exchange, one authorization for up to
 * LOCAL_BLOCKS.maxBlocks), the next batch asked for while the current one is copied; a block
 * the fast path does not give comes over HTTP by its hash. False, with nothing written, when the
 * first batch gives no block (the caller downloads over HTTP). Every fd received is closed,
 * whatever fails.
 */
async function fetchLocal(vol: Volume, entry: FileEntry, fh: FileHandle, onBytes: (n: number) => void): Promise<boolean> {
  const blocks = vol.blocks;
  if (!blocks.localBlocksEnabled) return false;
  blocks.warmLocal();
  const version = await blocks.latestVersion();
  const found = (await blocks.list(version, entry.path)).entries[0];
  if (found?.type !== "file" || found.path !== entry.path) return false;
  const size = found.size;
  const lenOf = (i: number) => Math.min(BLOCK_SIZE, size - i * BLOCK_SIZE);
  // Each distinct block once, with every index it sits at (a hole stays a hole: the truncate below makes it read zeros).
  const at = new Map<string, number[]>();
  for (const [i, hash] of [...expandBlocks(found.blocks ?? [])].entries()) if (hash) at.get(hash)?.push(i) ?? at.set(hash, [i]);
  const distinct = [...at.keys()];
  if (distinct.length === 0) return false;
  const batches: string[][] = [distinct.slice(0, LOCAL_FIRST_BATCH)];
  for (let i = LOCAL_FIRST_BATCH; i < distinct.length; i += LOCAL_BLOCKS.maxBlocks) batches.push(distinct.slice(i, i + LOCAL_BLOCKS.maxBlocks));
  const closeFiles = (files: Map<string, LocalBlockFile>) => {
    for (const f of files.values()) closeSync(f.fd);
  };
  let ahead: Promise<Map<string, LocalBlockFile>> | undefined = blocks.openBlocksLocal(batches[0]!);
  try {
    for (const [k, batch] of batches.entries()) {
      const files = await ahead!;
      ahead = undefined;
      // The first batch decides: the fast path is taken for the whole file, or not at all.
      if (k === 0 && files.size === 0) return false;
      try {
        if (k + 1 < batches.length) ahead = blocks.openBlocksLocal(batches[k + 1]!);
        await forEachLimit(batch, LOCAL_STREAMS, async (hash) => {
          const file = files.get(hash);
          let buf: Buffer | undefined;
          for (const i of at.get(hash)!) {
            const len = lenOf(i);
            if (!file || !(await blocks.copyBlockFileLocal(file, fh.fd, i * BLOCK_SIZE, len))) {
              buf ??= Buffer.allocUnsafe(BLOCK_SIZE);
              const data = await blocks.readBlock(hash, { start: 0, end: len }, buf);
              if (data.length !== len) throw new ConflictError(`'${entry.path}': block ${i} holds ${data.length} of the ${len} bytes the file needs`, "CONFLICT");
              await writevAll(fh, [data], i * BLOCK_SIZE);
            }
            onBytes(len);
          }
        });
      } finally {
        closeFiles(files);
      }
    }
  } finally {
    // A failure with the next batch asked for: its fds are closed once it arrives.
    if (ahead) void ahead.then(closeFiles, () => {});
  }
  await fh.truncate(size);
  return true;
}
