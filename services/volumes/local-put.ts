import { createHash } from "node:crypto";
import { type Stats, fstatSync, read } from "node:fs";
import { promisify } from "node:util";
import { BLOCK_SIZE, INLINE_BLOCK_MAX } from "../../protocol/volume.js";
import type { LocalPutBlock } from "../../protocol/local-blocks.js";
import type { BlockBuffers } from "../../lib/block-buffers.js";
import type { Clock } from "../../lib/clock.js";
import type { StagedBlob } from "../blobs/blob-store.js";
import type { BlobStore } from "../blobs/index.js";
import { invalid, siloError } from "../errors.js";
import type { KeyLock } from "./key-lock.js";
import type { ManifestStore } from "./manifest-store.js";

const readAsync = promisify(read);

/** Bytes read and hashed at a time: hashed right after its read, a chunk is still in the CPU cache (as client/volume-upload.ts). */
const READ_CHUNK = 1024 * 1024;

/**
 * Fills `data` from the file open as `fd` at `pos` and answers the SHA-256 (hex) of exactly
 * those bytes: what is stored is then what was hashed. Throws INVALID if the file can not be
 * read or ends before `data` is full.
 */
export type BlockReader = (fd: number, data: Buffer, pos: number) => Promise<string>;

/** What storing a range of a passed file needs of the volume store. */
export interface LocalPutDeps {
  store: ManifestStore;
  blobs: BlobStore;
  blockLock: KeyLock;
  clock: Clock;
  buffers: BlockBuffers;
  read: BlockReader;
}

/** What one range stored: its blocks in order, and how many of them had to be written (the others were held). */
export interface StoredRange {
  blocks: LocalPutBlock[];
  written: number;
  bytesWritten: number;
  /** Of bytesWritten, those the disk read straight from the pooled buffers (O_DIRECT). */
  bytesDirect: number;
}

/**
 * Local block writes (protocol/local-blocks.ts, LOCAL_PUT): stores the blocks of bytes
 * [offset, offset + length) of the file open as `fd` (passed by a client on this host) in
 * workspace `ws`. Each block is read into a pooled buffer and hashed here, once; a block the
 * workspace lacks is staged as a blob file (unsynced) while the next one is read. Then the group
 * is made durable together: the staged files' fdatasyncs at once, the renames, one fsync per
 * directory (GroupBlobWrites.publish), and the blocks' rows in one transaction (recordBlock's
 * group commit), all under the blocks' locks, so GC can neither delete a blob between its rename
 * and its row, nor run into a half-published group. Returns only once everything is durable; on
 * any failure nothing new is recorded and the staged files are removed.
 */
export async function storeRange(deps: LocalPutDeps, ws: string, fd: number, offset: number, length: number): Promise<StoredRange> {
  const { store, blobs, blockLock, clock, buffers, read } = deps;
  const group = blobs.group;
  if (!group) throw siloError("INTERNAL", "local block writes need a blob store on local disk");
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch {
    throw invalid("The passed descriptor can not be examined");
  }
  if (!st.isFile()) throw invalid("The passed descriptor is not a regular file");
  if (offset + length > st.size) throw invalid(`The range ends at ${offset + length}, past the file's ${st.size} bytes`);

  const blocks: LocalPutBlock[] = [];
  const staged: StagedBlob[] = [];
  const stagedHashes = new Set<string>();
  const inline: Array<{ hash: string; data: Buffer }> = [];
  // The previous block's store step (missing check, staging): it runs while this block is read.
  let storing: Promise<void> = Promise.resolve();
  try {
    for (let pos = offset; pos < offset + length; pos += BLOCK_SIZE) {
      const mem = buffers.take();
      const data = mem.memory.subarray(0, Math.min(BLOCK_SIZE, offset + length - pos));
      let hash: string;
      try {
        hash = await read(fd, data, pos);
      } catch (err) {
        mem.release();
        throw err;
      }
      blocks.push({ hash, size: data.length });
      await storing;
      storing = (async () => {
        try {
          if (data.length <= INLINE_BLOCK_MAX) inline.push({ hash, data: Buffer.from(data) });
          else if (!stagedHashes.has(hash) && (await store.missingBlocks(ws, [hash], clock.now())).length > 0) {
            stagedHashes.add(hash);
            staged.push(await group.stage(ws, hash, data, mem.pageAligned));
          }
        } finally {
          mem.release();
        }
      })();
      storing.catch(() => {}); // awaited at the next block or after the loop
    }
    await storing;
    if (staged.length > 0) {
      await blockLock.withAll(
        staged.map((b) => `${ws}/${b.hash}`),
        async () => {
          await group.publish(staged);
          const now = clock.now();
          // Called in one turn: recordBlock commits them in one transaction.
          await Promise.all(staged.map((b) => store.recordBlock(ws, b.hash, b.size, now)));
        },
      );
    }
    if (inline.length > 0) await store.storeInline(ws, inline, clock.now());
  } catch (err) {
    await storing.catch(() => {});
    await group.discard(staged);
    throw err;
  }
  return {
    blocks,
    written: staged.length + inline.length,
    bytesWritten: staged.reduce((n, b) => n + b.size, 0),
    bytesDirect: staged.reduce((n, b) => n + b.directBytes, 0),
  };
}

/**
 * The BlockReader of an addon that has readHashed (native/fuse-fd): the reads and the hashing run
 * on the thread pool, so the event loop stays free and two requests hash on both cores (with
 * SHA-NI, ~0.66 CPU-s per GiB, which Node's hash.update spent on the main thread).
 */
export function nativeBlockReader(readHashed: (fd: number, buf: Buffer, position: number) => Promise<Buffer | undefined>): BlockReader {
  return async (fd, data, pos) => {
    let digest: Buffer | undefined;
    try {
      digest = await readHashed(fd, data, pos);
    } catch (err) {
      throw invalid(`The passed file can not be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!digest) throw invalid("The file shrank while it was being read");
    return digest.toString("hex");
  };
}

/** The BlockReader without the addon: READ_CHUNK at a time, each chunk hashed on the main thread as soon as it is read (while the next is read). */
export async function readHashed(fd: number, data: Buffer, pos: number): Promise<string> {
  const sha = createHash("sha256");
  const readAt = (at: number) => {
    const p = readAsync(fd, data, at, Math.min(READ_CHUNK, data.length - at), pos + at).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) throw invalid("The file shrank while it was being read");
        return bytesRead;
      },
      (err: NodeJS.ErrnoException) => {
        throw invalid(`The passed file can not be read: ${err.code ?? err.message}`);
      },
    );
    p.catch(() => {}); // awaited below
    return p;
  };
  let next = readAt(0);
  for (let off = 0; off < data.length; ) {
    const end = off + (await next);
    if (end < data.length) next = readAt(end);
    sha.update(data.subarray(off, end));
    off = end;
  }
  return sha.digest("hex");
}
