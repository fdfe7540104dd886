import type { FileHandle } from "node:fs/promises";

/** Buffers one writev takes (Linux's IOV_MAX). */
const IOV_MAX = 1024;

/**
 * Writes `chunks` back to back with as few writev calls as the kernel takes (no copy into a
 * staging buffer), from `position`, or from the file position when it is undefined. Short
 * writes carry on where they stopped.
 */
export async function writevAll(fh: FileHandle, chunks: readonly Uint8Array[], position?: number): Promise<void> {
  let pos = position;
  let queue = chunks;
  while (queue.length > 0) {
    const batch = queue.slice(0, IOV_MAX);
    const want = batch.reduce((n, b) => n + b.length, 0);
    const { bytesWritten } = await fh.writev(batch, pos);
    if (pos !== undefined) pos += bytesWritten;
    if (bytesWritten === want) {
      queue = queue.slice(batch.length);
      continue;
    }
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const b of queue) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    queue = rest;
  }
}
