import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { Readable } from "node:stream";
import { InvalidError, NotFoundError } from "../protocol/errors.js";
import { globBase, globToRegExp, isGlob } from "./glob.js";
import { type ObjectRecord, SiloObject } from "./object.js";
import { type EnvironmentOption, type FromNameOptions, ObjectService } from "./object-service.js";
import type { Transport } from "./transport.js";
import { type FileEntry, Volume, type VolumeCreateOptions, type VolumeInfo } from "./volume.js";

/** Bytes to write: a Buffer/Uint8Array, a readable stream (e.g. `fs.createReadStream`), or any async iterable of bytes. */
export type WriteSource = Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface NfsProgressOption {
  /** Called as bytes are hashed and stored, with how many more were done (add them up for a total). */
  onProgress?: (bytesDone: number) => void;
}

const strip = (p: string) => p.replace(/^\/+/, "").replace(/\/+$/, "");

/**
 * A shared, writable file system (Modal's `NetworkFileSystem`): no versions to commit or
 * reload. Every write is visible to the next open or read anywhere, in every job and mount
 * (close-to-open consistency; docs/nfs.md). Paths are `/`-separated, relative to its root
 * (a leading `/` means the root).
 */
export class NetworkFileSystem extends SiloObject {
  /** The tree this NFS is stored as, for the file calls and the mount daemon; no heartbeat of its own. */
  private readonly tree: Volume;

  constructor(transport: Transport, record: ObjectRecord) {
    super(transport, record);
    this.tree = new Volume(transport, { ...record, heartbeatIntervalMs: undefined });
  }

  /** The block-level API of the tree behind this NFS (what `silo nfs mount` serves); not for jobs. */
  treeHandle(): Volume {
    return this.tree;
  }

  /** Name, id, inode count and limit. (`version` counts the writes so far; an NFS has no history to go back to.) */
  info(): Promise<VolumeInfo> {
    return this.tree.info();
  }

  /**
   * Writes a whole file atomically: readers see the old or the new content, never a mix.
   * Parent directories are created as needed. A `remotePath` ending in `/` is a directory: the
   * file keeps the name of the stream's source file (`fs.createReadStream(path)`). Returns the
   * number of bytes written.
   */
  async writeFile(remotePath: string, source: WriteSource, opts: NfsProgressOption = {}): Promise<number> {
    let target = remotePath;
    if (remotePath.endsWith("/")) {
      const from = (source as { path?: unknown }).path;
      if (typeof from !== "string") throw new InvalidError(`'${remotePath}' names a directory; give a file name (or a stream of a local file)`, "INVALID");
      target = `${remotePath}${basename(from)}`;
    }
    if (strip(target) === "") throw new InvalidError("writeFile needs a file path, not the root", "INVALID");
    let bytes = 0;
    const batch = this.tree.batchUpload({
      force: true,
      onProgress: (n) => {
        bytes += n;
        opts.onProgress?.(n);
      },
    });
    batch.putFile(source, target);
    await batch.commit();
    return source instanceof Uint8Array ? source.length : bytes;
  }

  /** The bytes of a file, as a stream of chunks (NotFoundError if missing; InvalidError for a directory). */
  readFile(path: string): AsyncGenerator<Buffer> {
    return this.tree.readFile(path);
  }

  /**
   * The entries at `path`:
   * - a directory: its entries, `path` relative to that directory (not recursive);
   * - a file: that one file, `path` as stored (relative to the root);
   * - a glob (`*`, `?`, `**`; e.g. `logs/**\/*.txt`): every match below the glob's literal
   *   directory, `path` relative to the root.
   */
  async *iterdir(path: string): AsyncGenerator<FileEntry> {
    if (isGlob(path)) {
      const base = globBase(path);
      const match = globToRegExp(path);
      try {
        for await (const e of this.tree.iterdir(base, { recursive: true })) if (match.test(e.path)) yield e;
      } catch (err) {
        // A glob whose directory does not exist matches nothing.
        if (!(err instanceof NotFoundError)) throw err;
      }
      return;
    }
    const dir = strip(path);
    for await (const e of this.tree.iterdir(dir, { recursive: false })) {
      // A file lists as itself (same path); a directory's entries are named relative to it.
      yield e.path === dir ? e : { ...e, path: dir === "" ? e.path : e.path.slice(dir.length + 1) };
    }
  }

  /** `iterdir` collected into an array. */
  async listdir(path: string): Promise<FileEntry[]> {
    const out: FileEntry[] = [];
    for await (const e of this.iterdir(path)) out.push(e);
    return out;
  }

  /** Uploads a local file to `remotePath` (default: its name, at the root). */
  async addLocalFile(localPath: string, remotePath?: string, opts: NfsProgressOption = {}): Promise<void> {
    const st = await stat(localPath);
    if (!st.isFile()) throw new InvalidError(`'${localPath}' is not a file`, "INVALID");
    const target = remotePath === undefined ? basename(localPath) : remotePath.endsWith("/") ? `${remotePath}${basename(localPath)}` : remotePath;
    await this.writeFile(target, createReadStream(localPath), opts);
  }

  /** Uploads a local directory tree to `remotePath` (default: its name, at the root), as one atomic change. */
  async addLocalDir(localPath: string, remotePath?: string, opts: NfsProgressOption = {}): Promise<void> {
    const st = await stat(localPath);
    if (!st.isDirectory()) throw new InvalidError(`'${localPath}' is not a directory`, "INVALID");
    const batch = this.tree.batchUpload({ force: true, onProgress: opts.onProgress });
    batch.putDirectory(localPath, remotePath ?? basename(localPath));
    await batch.commit();
  }

  /** Removes a file or symlink, or a directory (a non-empty one only with `recursive`). */
  async removeFile(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.tree.removeFile(path, opts);
  }
}

/** `silo.networkFileSystems`: named and ephemeral network file systems (Modal's `NetworkFileSystem.from_name`, …). */
export class NetworkFileSystemService extends ObjectService<NetworkFileSystem> {
  constructor(transport: Transport) {
    super(transport, "nfs");
  }

  protected wrap(record: ObjectRecord): NetworkFileSystem {
    return new NetworkFileSystem(this.transport, record);
  }

  /** The named NFS (created with `createIfMissing`, with `inodeLimit` if given); NotFoundError otherwise. */
  fromName(name: string, opts: FromNameOptions & VolumeCreateOptions = {}): Promise<NetworkFileSystem> {
    return this.lookup(name, opts, opts.inodeLimit === undefined ? {} : { inodeLimit: opts.inodeLimit });
  }

  /** An anonymous NFS, deleted by `close()` (or when this process stops heart-beating). */
  ephemeral(opts: EnvironmentOption & VolumeCreateOptions = {}): Promise<NetworkFileSystem> {
    return this.createEphemeral(opts, opts.inodeLimit === undefined ? {} : { inodeLimit: opts.inodeLimit });
  }
}
