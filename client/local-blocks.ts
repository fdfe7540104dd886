import { type Stats, closeSync, fstatSync, read, write } from "node:fs";
import { promisify } from "node:util";
import { type FuseFdAddon, fuseFdAddonIfBuilt } from "../lib/native-addon.js";
import {
  LOCAL_BLOCKS,
  LOCAL_BLOCKS_ENV,
  LOCAL_BLOCKS_ROUTE,
  type LocalBlockReply,
  type LocalBlockRequest,
  type LocalBlocksInfo,
  parseLocalBlockReply,
} from "../protocol/local-blocks.js";
import type { Transport } from "./transport.js";

const readAsync = promisify(read);
const writeAsync = promisify(write);

/** Bytes each pread/pwrite of a hand copy moves (where copy_file_range is refused). */
const COPY_CHUNK = 8 << 20;

/** Failed exchanges in a row after which the fast path rests (FAILURE_PAUSE_MS). */
export const MAX_FAILURES = 3;
/** How long the fast path rests after MAX_FAILURES failures (then the socket is looked up again). */
export const FAILURE_PAUSE_MS = 30_000;

/** A block's blob file on this host, opened by the server: the caller reads its first `size` bytes and closes `fd`. */
export interface LocalBlockFile {
  fd: number;
  size: number;
}

/** What a local block client may use: the addon, unless turned off (`enabled`, else SILO_LOCAL_BLOCKS=0) or not built (`addon: null` in tests: none). */
export function localAddon(opts: { addon?: FuseFdAddon | null; enabled?: boolean }): FuseFdAddon | undefined {
  const enabled = opts.enabled ?? process.env[LOCAL_BLOCKS_ENV] !== "0";
  return enabled ? (opts.addon === null ? undefined : (opts.addon ?? fuseFdAddonIfBuilt())) : undefined;
}

/**
 * Local block reads, the client's side (protocol/local-blocks.ts): when the server runs on this
 * host with local blobs, a block's blob file is opened by the server and passed over its unix
 * socket, and the block read from it here, instead of its bytes over HTTP. Every failure (no
 * addon, no socket, another server process, a refusal) answers undefined: the caller reads the
 * block over HTTP; MAX_FAILURES in a row rest the fast path for FAILURE_PAUSE_MS.
 * Off with SILO_LOCAL_BLOCKS=0.
 */
export class LocalBlockReader {
  private info: Promise<LocalBlocksInfo | undefined> | undefined;
  private failures = 0;
  private restUntil = 0;
  /** Blocks opened through the fast path, and exchanges (or reads of an opened block) that failed. */
  readonly counts = { blocks: 0, failures: 0 };
  private readonly addon: FuseFdAddon | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly environment: string,
    opts: { addon?: FuseFdAddon | null; enabled?: boolean } = {},
  ) {
    this.addon = localAddon(opts);
  }

  /** Whether the fast path may be tried at all (the addon is built and it is not turned off). */
  get enabled(): boolean {
    return !!this.addon?.fdRequest;
  }

  /**
   * The server's open file of block `hash` of volume `volume`, or undefined: read it over HTTP.
   * The caller owns the fd.
   */
  async open(volume: string, hash: string): Promise<LocalBlockFile | undefined> {
    return (await this.openMany(volume, [hash])).get(hash);
  }

  /**
   * The server's open files of those of `hashes` (blocks of volume `volume`) the fast path gives,
   * by hash, asked for LOCAL_BLOCKS.maxBlocks at a time (duplicates asked once); a block not in
   * the answer is read over HTTP. The caller owns every fd in it.
   */
  async openMany(volume: string, hashes: readonly string[]): Promise<Map<string, LocalBlockFile>> {
    const out = new Map<string, LocalBlockFile>();
    const distinct = [...new Set(hashes)];
    for (let i = 0; i < distinct.length; i += LOCAL_BLOCKS.maxBlocks) {
      if (!this.addon?.fdRequest || Date.now() < this.restUntil) break;
      const info = await (this.info ??= this.discover());
      if (!info?.socket || !info.instance) break;
      await this.exchange(info as Required<LocalBlocksInfo>, volume, distinct.slice(i, i + LOCAL_BLOCKS.maxBlocks), out);
    }
    return out;
  }

  /** One request for `hashes` (distinct, at most LOCAL_BLOCKS.maxBlocks): the files given land in `out`; every other fd received is closed. */
  private async exchange(info: Required<LocalBlocksInfo>, volume: string, hashes: string[], out: Map<string, LocalBlockFile>): Promise<void> {
    const token = this.transport.config;
    const req: LocalBlockRequest = { instance: info.instance, token: `${token.tokenId}:${token.tokenSecret}`, environment: this.environment, volume, hashes };
    let fds: number[] = [];
    try {
      const res = await this.addon!.fdRequest!(info.socket, Buffer.from(`${JSON.stringify(req)}\n`), LOCAL_BLOCKS.clientTimeoutMs, LOCAL_BLOCKS.maxReplyBytes, hashes.length + 1);
      // An addon without maxFds answers one `fd` and no `fds`.
      fds = res.fds ?? (res.fd >= 0 ? [res.fd] : []);
      const reply = parseLocalBlockReply(res.reply.subarray(0, Math.max(0, res.reply.lastIndexOf(10))), hashes.length);
      if (!reply || reply.instance !== info.instance) return this.failed(fds, true);
      if (!reply.ok) {
        // A refusal carries no fd: any that came is closed.
        closeAll(fds);
        fds = [];
        return this.refused(reply);
      }
      const given = reply.blocks.filter((b) => "size" in b).length;
      // Exactly one fd per block given (one more is received, to see a surplus), or none of them is trusted to be which block.
      if (fds.length !== given) return this.failed(fds);
      let k = 0;
      let ok = true;
      for (const [i, b] of reply.blocks.entries()) {
        if (!("size" in b)) {
          if (b.code === "INTERNAL") ok = false;
          continue;
        }
        const fd = fds[k++]!;
        // Only a regular file holding the whole block is read (never a pipe, a device or a cut file).
        const st = fstatOrUndefined(fd);
        if (!st?.isFile() || st.size < b.size) {
          closeAll([fd]);
          ok = false;
          continue;
        }
        out.set(hashes[i]!, { fd, size: b.size });
        this.counts.blocks++;
      }
      // Nothing above throws: each fd is now in `out` or closed.
      fds = [];
      if (ok) this.failures = 0;
      else this.failed([]);
    } catch {
      this.failed(fds, true);
    }
  }

  /**
   * Block `hash` of volume `volume` read into `into` (a view of it; a buffer of its own if it
   * does not fit), or undefined: read it over HTTP.
   */
  async read(volume: string, hash: string, into: Buffer): Promise<Buffer | undefined> {
    const file = await this.open(volume, hash);
    if (!file) return undefined;
    try {
      const out = into.length >= file.size ? into.subarray(0, file.size) : Buffer.allocUnsafe(file.size);
      for (let at = 0; at < file.size; ) {
        const { bytesRead } = await readAsync(file.fd, out, at, file.size - at, at);
        // A blob shorter than its recorded size is not the block: HTTP answers (or fails) instead.
        if (bytesRead === 0) return this.failed([]);
        at += bytesRead;
      }
      return out;
    } catch {
      return this.failed([]);
    } finally {
      closeSync(file.fd);
    }
  }

  /**
   * Copies the first `len` bytes of block `hash` of volume `volume` into the file `fdOut` at
   * `at` straight from the server's file (copyFile). False, nothing counted as written, if the
   * fast path is not available for it: copy it over HTTP. Throws only for a failed write to `fdOut`.
   */
  async copy(volume: string, hash: string, fdOut: number, at: number, len: number): Promise<boolean> {
    const file = await this.open(volume, hash);
    if (!file) return false;
    try {
      return await this.copyFile(file, fdOut, at, len);
    } finally {
      closeSync(file.fd);
    }
  }

  /**
   * Copies the first `len` bytes of a block file `open`/`openMany` gave into the file `fdOut` at
   * `at` (copy_file_range: the bytes never enter this process; pread/pwrite where it is refused).
   * False if the file holds fewer (the block is not that file: copy it over HTTP). Throws only
   * for a failed write to `fdOut`. The caller still owns (and closes) `file.fd`.
   */
  async copyFile(file: LocalBlockFile, fdOut: number, at: number, len: number): Promise<boolean> {
    // A blob shorter than the bytes asked for is not the block: HTTP answers (or fails) instead.
    if (file.size < len) return !!this.failed([]);
    let done = 0;
    if (this.addon?.copyRange) {
      done = await this.addon.copyRange(file.fd, 0, fdOut, at, len).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "EXDEV" || err.code === "ENOSYS" || err.code === "EINVAL" || err.code === "EOPNOTSUPP") return 0;
        throw err;
      });
    }
    if (done < len) {
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, len - done));
      while (done < len) {
        const { bytesRead } = await readAsync(file.fd, buf, 0, Math.min(buf.length, len - done), done);
        if (bytesRead === 0) return !!this.failed([]);
        for (let w = 0; w < bytesRead; ) w += (await writeAsync(fdOut, buf, w, bytesRead - w, at + done + w)).bytesWritten;
        done += bytesRead;
      }
    }
    return true;
  }

  /** Looks the socket up now (if not yet), so a caller's first request does not wait for it. */
  warm(): void {
    if (this.addon?.fdRequest) this.info ??= this.discover();
  }

  /** Counts a failed read of a file `open` gave (the caller closed it and reads over HTTP). */
  noteFailure(): void {
    this.failed([]);
  }

  private discover(): Promise<LocalBlocksInfo | undefined> {
    // A server without the route (older) or any failure: no fast path until the next look-up.
    return this.transport.rpc<LocalBlocksInfo>("GET", LOCAL_BLOCKS_ROUTE).catch(() => undefined);
  }

  /** A refusal: NOT_LOCAL and NOT_FOUND are about the block (HTTP says the same or serves it), the others about the path. */
  private refused(reply: Extract<LocalBlockReply, { ok: false }>): undefined {
    if (reply.code === "NOT_LOCAL" || reply.code === "NOT_FOUND") return undefined;
    return this.failed([], reply.code === "INSTANCE");
  }

  /** Counts a failure (closing the `fds` that came); `rediscover`: look the socket up again next time (a restarted server). */
  private failed(fds: readonly number[], rediscover = false): undefined {
    closeAll(fds);
    this.counts.failures++;
    if (rediscover) this.info = undefined;
    if (++this.failures >= MAX_FAILURES) {
      this.failures = 0;
      this.restUntil = Date.now() + FAILURE_PAUSE_MS;
      this.info = undefined;
    }
    return undefined;
  }
}

/** Closes each of `fds`, whatever the others do. */
function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing of ours leaks.
    }
  }
}

function fstatOrUndefined(fd: number): Stats | undefined {
  try {
    return fstatSync(fd);
  } catch {
    return undefined;
  }
}
