import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { constants, type FileHandle, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { fsyncPath } from "../../lib/fsync-path.js";
import { fuseFdAddonIfBuilt } from "../../lib/native-addon.js";
import { writevAll } from "../../lib/writev-all.js";
import { CoalescedSyncs } from "../coalesced-syncs.js";
import { notFound } from "../errors.js";
import type { BlobInfo, BlobStore, ByteRange, GroupBlobWrites, StagedBlob } from "./blob-store.js";

const STALE_TEMP_MS = 60 * 60 * 1000;

/** What O_DIRECT asks of a write's memory, length and offset (a page: a multiple of any disk's logical block). */
export const DIRECT_ALIGN = 4096;

/**
 * Blobs as files under `<root>/<namespace>/<aa>/<hash>`. A put writes a temp file in the
 * same directory, fsyncs it, renames it into place and fsyncs the directory, so a blob is
 * either whole or absent, and present after a crash once `put` returned.
 */
export class LocalBlobStore implements BlobStore {
  /** Prefix directories known to exist durably (saves a mkdir and its fsyncs per put). */
  private readonly dirs = new Set<string>();
  /** Directory fsyncs, coalesced: puts landing together in one directory share one. */
  private readonly dirSyncs = new CoalescedSyncs((dir) => fsyncPath(dir));
  /** Cleared when the file system refuses O_DIRECT: later staged blobs are written through the page cache. */
  private directWrites = true;

  /**
   * `syncAll`: fsyncs of many fds at once (native/fuse-fd syncAll); without it (the addon not
   * built) a group's syncs go through the thread pool, four at a time.
   */
  constructor(
    private readonly root: string,
    private readonly syncAll: SyncAll | undefined = addonSyncAll(),
  ) {}

  private dir(ns: string, hash: string): string {
    return join(this.root, ns, hash.slice(0, 2));
  }

  private file(ns: string, hash: string): string {
    return join(this.dir(ns, hash), hash);
  }

  async has(ns: string, hash: string): Promise<boolean> {
    return stat(this.file(ns, hash)).then(
      () => true,
      () => false,
    );
  }

  /** The prefix directory of `hash`, created (and its entry made durable) if it is new. */
  private async ensureDir(ns: string, hash: string): Promise<string> {
    const dir = this.dir(ns, hash);
    if (!this.dirs.has(dir)) {
      // mkdir answers the first directory it created: each new one's entry in its parent must be durable too.
      const first = await mkdir(dir, { recursive: true });
      if (first !== undefined) {
        for (let d = dir; ; d = dirname(d)) {
          await this.dirSyncs.sync(dirname(d));
          if (d === first || d === dirname(d)) break;
        }
      }
      this.dirs.add(dir);
    }
    return dir;
  }

  async put(ns: string, hash: string, body: AsyncIterable<Uint8Array>): Promise<number> {
    const dir = await this.ensureDir(ns, hash);
    const tmp = join(dir, `.tmp-${hash}-${randomBytes(6).toString("hex")}`);
    const fh = await open(tmp, "w");
    try {
      const size = await writeAll(fh, body);
      await fh.datasync();
      await fh.close();
      await rename(tmp, this.file(ns, hash));
      // The rename is durable only once the directory is synced; concurrent puts share one.
      await this.dirSyncs.sync(dir);
      return size;
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  readonly group: GroupBlobWrites = {
    stage: async (ns, hash, data, pageAligned = false) => {
      const dir = await this.ensureDir(ns, hash);
      const tmp = join(dir, `.tmp-${hash}-${randomBytes(6).toString("hex")}`);
      const fh = await open(tmp, "w");
      const staged: LocalStagedBlob = { ns, hash, size: data.length, directBytes: 0, dir, tmp, fh, state: "staged" };
      try {
        staged.directBytes = pageAligned ? await this.writeDirect(tmp, data) : 0;
        // The rest (all of it, or the last partial page) through the page cache.
        if (staged.directBytes < data.length) await writevAll(fh, [data.subarray(staged.directBytes)], staged.directBytes);
        return staged;
      } catch (err) {
        await this.group.discard([staged]);
        throw err;
      }
    },
    publish: async (group) => {
      const blobs = group as readonly LocalStagedBlob[];
      try {
        // Together: the disk flushes its cache once or a few times for all of them, not once each.
        if (this.syncAll) await this.syncEach(blobs.map((b) => b.fh!.fd), true);
        else await Promise.all(blobs.map((b) => b.fh!.datasync()));
        await Promise.all(blobs.map((b) => b.fh!.close().then(() => (b.fh = undefined))));
        for (const b of blobs) {
          await rename(b.tmp, this.file(b.ns, b.hash));
          b.state = "renamed";
        }
        // The renames are durable once their directories are synced: one fsync per distinct directory.
        const dirs = [...new Set(blobs.map((b) => b.dir))];
        if (this.syncAll) await this.syncDirs(dirs);
        else await Promise.all(dirs.map((dir) => this.dirSyncs.sync(dir)));
      } catch (err) {
        await this.group.discard(blobs);
        throw err;
      }
    },
    discard: async (group) => {
      for (const b of group as readonly LocalStagedBlob[]) {
        await b.fh?.close().catch(() => {});
        b.fh = undefined;
        if (b.state === "staged") await unlink(b.tmp).catch(() => {});
        b.state = "gone";
      }
    },
  };

  /** syncAll of `fds`, SYNC_ALL_MAX at a time. */
  private async syncEach(fds: number[], dataOnly: boolean): Promise<void> {
    for (let i = 0; i < fds.length; i += SYNC_ALL_MAX) await this.syncAll!(fds.slice(i, i + SYNC_ALL_MAX), dataOnly);
  }

  /** fsyncs of `dirs` at once (each opened after the renames it must cover). */
  private async syncDirs(dirs: string[]): Promise<void> {
    const handles: FileHandle[] = [];
    try {
      for (const dir of dirs) handles.push(await open(dir, "r"));
      await this.syncEach(handles.map((h) => h.fd), false);
    } finally {
      await Promise.all(handles.map((h) => h.close().catch(() => {})));
    }
  }

  /**
   * Writes the whole pages at the start of `data` to `tmp` with O_DIRECT: the disk reads the
   * caller's buffer itself, so nothing is copied into the page cache. On this VM a buffered write
   * of new blobs cost the server ~2.5–3 system CPU-s per GiB: each page-cache page it fills is
   * fresh memory the host must fault in (docs/benchmarks.md, "Local block writes with O_DIRECT").
   * The blob is still made durable by the group's fdatasync (the allocation and the disk's
   * cache). Returns the bytes written so (0: none; the caller writes the rest the ordinary way).
   */
  private async writeDirect(tmp: string, data: Uint8Array): Promise<number> {
    const whole = data.length - (data.length % DIRECT_ALIGN);
    if (!this.directWrites || whole === 0) return 0;
    let dio: FileHandle;
    try {
      dio = await open(tmp, constants.O_WRONLY | constants.O_DIRECT);
    } catch (err) {
      if (!refusesDirect(err)) throw err;
      this.directWrites = false;
      return 0;
    }
    try {
      await writevAll(dio, [data.subarray(0, whole)], 0);
    } catch (err) {
      // A file system that wants more alignment than a page: the caller rewrites the whole blob buffered.
      if (!refusesDirect(err)) throw err;
      this.directWrites = false;
      return 0;
    } finally {
      await dio.close();
    }
    return whole;
  }

  async open(ns: string, hash: string): Promise<FileHandle> {
    return open(this.file(ns, hash), "r").catch(() => {
      throw notFound(`Block ${hash}`);
    });
  }

  async get(ns: string, hash: string, range?: ByteRange): Promise<Readable> {
    // Open first so a missing blob is a clean NotFound rather than a stream error mid-response.
    const fh = await this.open(ns, hash);
    if (range && range.end <= range.start) {
      await fh.close();
      return createReadStream("", { start: 0, end: -1 });
    }
    return fh.createReadStream({ start: range?.start ?? 0, end: range ? range.end - 1 : undefined, highWaterMark: 1 << 20 });
  }

  async delete(ns: string, hash: string): Promise<void> {
    await unlink(this.file(ns, hash)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  async deleteMany(ns: string, hashes: readonly string[]): Promise<void> {
    for (const hash of hashes) await this.delete(ns, hash);
  }

  async *list(ns: string): AsyncIterable<BlobInfo> {
    const base = join(this.root, ns);
    const prefixes = await readdir(base).catch(() => [] as string[]);
    for (const prefix of prefixes) {
      for (const name of await readdir(join(base, prefix)).catch(() => [] as string[])) {
        const st = await stat(join(base, prefix, name)).catch(() => undefined);
        if (!st) continue;
        if (name.startsWith(".tmp-")) {
          // Leftover of a put that crashed; a live put finishes well within an hour.
          if (st.mtimeMs < Date.now() - STALE_TEMP_MS) await unlink(join(base, prefix, name)).catch(() => {});
          continue;
        }
        yield { hash: name, size: st.size, mtimeMs: st.mtimeMs };
      }
    }
  }
}

/** A staged blob of this store: its temp file, open until published. */
interface LocalStagedBlob extends StagedBlob {
  directBytes: number;
  dir: string;
  tmp: string;
  fh: FileHandle | undefined;
  /** staged: the temp file holds it; renamed: it is in place; gone: discarded. */
  state: "staged" | "renamed" | "gone";
}

/** fsyncs (fdatasyncs with `dataOnly`) of every fd at once; rejects with the first failure once all ran. */
export type SyncAll = (fds: number[], dataOnly: boolean) => Promise<void>;

/** Fds one syncAll takes (native/fuse-fd). */
const SYNC_ALL_MAX = 64;

/** The addon's syncAll, if it is built (and new enough). */
function addonSyncAll(): SyncAll | undefined {
  const addon = fuseFdAddonIfBuilt();
  return addon?.syncAll ? (fds, dataOnly) => addon.syncAll!(fds, dataOnly) : undefined;
}

/** EINVAL: the file system does not take O_DIRECT (or not with this alignment). */
const refusesDirect = (err: unknown) => (err as NodeJS.ErrnoException).code === "EINVAL";

/** Bytes gathered before a write: network chunks are small, a block is up to 8 MiB. */
const WRITE_BYTES = 4 << 20;

/** Writes a stream to a file in gathering writes of up to WRITE_BYTES; returns the byte count. */
async function writeAll(fh: FileHandle, body: AsyncIterable<Uint8Array>): Promise<number> {
  let parts: Uint8Array[] = [];
  let held = 0;
  let total = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    held += chunk.length;
    total += chunk.length;
    if (held >= WRITE_BYTES) {
      await writevAll(fh, parts);
      parts = [];
      held = 0;
    }
  }
  if (held > 0) await writevAll(fh, parts);
  return total;
}

