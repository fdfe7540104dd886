import { statfs } from "node:fs/promises";
import type { FuseFdAddon } from "../lib/native-addon.js";
import {
  LOCAL_BLOCKS_ROUTE,
  LOCAL_PUT,
  type LocalBlocksInfo,
  type LocalPutBlock,
  type LocalPutRequest,
  parseLocalPutReply,
} from "../protocol/local-blocks.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { localAddon } from "./local-blocks.js";
import { forEachLimit } from "./limit.js";
import type { Transport } from "./transport.js";

/** statfs(2)'s f_type of a FUSE file system. */
const FUSE_SUPER_MAGIC = 0x65735546;

/**
 * Local block writes, the client's side (protocol/local-blocks.ts, LOCAL_PUT): when the server
 * runs on this host with local blobs, a large file's blocks are stored by passing the server the
 * file's open fd, a range of LOCAL_PUT.maxBlocks blocks per request, LOCAL_PUT.inFlight requests
 * at once; the server reads, hashes and stores them and answers their hashes once they are
 * durable. Any failure answers undefined (nothing committed yet): the caller uploads the file
 * over HTTP instead. Off with SILO_LOCAL_BLOCKS=0, as local block reads.
 */
export class LocalBlockWriter {
  private info: Promise<LocalBlocksInfo | undefined> | undefined;
  private broken = false;
  /** Files stored through the fast path, their bytes, and files for which it failed (each then went over HTTP). */
  readonly counts = { files: 0, bytes: 0, failures: 0 };
  private readonly addon: FuseFdAddon | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly environment: string,
    opts: { addon?: FuseFdAddon | null; enabled?: boolean } = {},
  ) {
    this.addon = localAddon(opts);
  }

  /**
   * The blocks of the first `size` bytes of the file at `path`, open as `fd`, stored by the server of volume
   * `volume` (durable when this resolves), in order; or undefined: store them over HTTP. `onRange`
   * is called with the bytes of each range as it is answered.
   */
  async putFile(volume: string, path: string, fd: number, size: number, onRange?: (bytes: number) => void): Promise<LocalPutBlock[] | undefined> {
    const fdPut = this.addon?.fdPutRequest;
    if (!fdPut || this.broken || size < LOCAL_PUT.minFileBytes) return undefined;
    // A file on a FUSE mount (a silo mount among them) stays on HTTP: the server's thread pool
    // would wait on that mount's daemon, which may itself be waiting on this server.
    if ((await statfs(path).catch(() => undefined))?.type === FUSE_SUPER_MAGIC) return undefined;
    const info = await (this.info ??= this.discover());
    if (!info?.putSocket || !info.instance) return undefined;
    const span = LOCAL_PUT.maxBlocks * BLOCK_SIZE;
    const ranges = Array.from({ length: Math.ceil(size / span) }, (_, i) => i);
    const out: LocalPutBlock[][] = [];
    const token = this.transport.config;
    const one = async (i: number) => {
      const offset = i * span;
      const length = Math.min(span, size - offset);
      const req: LocalPutRequest = { op: "put", instance: info.instance!, token: `${token.tokenId}:${token.tokenSecret}`, environment: this.environment, volume, offset, length };
      const res = await fdPut.call(this.addon, info.putSocket!, Buffer.from(`${JSON.stringify(req)}\n`), fd, LOCAL_PUT.clientTimeoutMs, LOCAL_PUT.maxReplyBytes);
      const reply = parseLocalPutReply(res.reply.subarray(0, Math.max(0, res.reply.lastIndexOf(10))), offset, length);
      if (!reply || reply.instance !== info.instance) throw new Error("local block write: no valid reply");
      if (!reply.ok) throw new Error(`local block write refused: ${reply.code}: ${reply.message}`);
      out[i] = reply.blocks;
      onRange?.(length);
    };
    // forEachLimit settles only when no request is in flight: the caller may then close `fd` (a
    // closed fd's number may be reused by another file before the addon sends it).
    const failed = await forEachLimit(ranges, LOCAL_PUT.inFlight, one).then(
      () => false,
      () => true,
    );
    if (failed) {
      this.counts.failures++;
      // Looked up again next time (a restarted server has another instance); after three failed
      // files this writer stops trying (each costs the time until its failure).
      this.info = undefined;
      if (this.counts.failures >= 3) this.broken = true;
      return undefined;
    }
    this.counts.files++;
    this.counts.bytes += size;
    return out.flat();
  }

  private discover(): Promise<LocalBlocksInfo | undefined> {
    return this.transport.rpc<LocalBlocksInfo>("GET", LOCAL_BLOCKS_ROUTE).catch(() => undefined);
  }
}
