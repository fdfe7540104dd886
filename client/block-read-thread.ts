import { Worker } from "node:worker_threads";

/**
 * The thread's code, evaluated (not a file): it runs the same from dist/ and from the sources
 * under vitest. Each job reads a range of a file into shared memory, READ_CHUNK bytes at a time,
 * and hashes each chunk right after its read, while it is still in this core's cache (hashing
 * on another core than the read's cost ~0.25 CPU-s per GiB more, measured). Jobs run in order.
 */
const THREAD = `
const { parentPort } = require("node:worker_threads");
const { readSync } = require("node:fs");
const { createHash } = require("node:crypto");
parentPort.on("message", ({ id, fd, sab, offset, length, position, chunk }) => {
  try {
    const data = new Uint8Array(sab, offset, length);
    const sha = createHash("sha256");
    for (let off = 0; off < length; ) {
      const n = readSync(fd, data, off, Math.min(chunk, length - off), position + off);
      if (n === 0) return parentPort.postMessage({ id, bytes: off });
      sha.update(data.subarray(off, off + n));
      off += n;
    }
    parentPort.postMessage({ id, bytes: length, hex: sha.digest("hex") });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

/** A read job's answer: bytes read, and the hash if all `length` bytes were read. */
type Reply = { id: number; bytes?: number; hex?: string; error?: string };

/** Bytes read and hashed at a time by the thread: a chunk is hashed while still in the CPU cache. */
const READ_CHUNK = 1024 * 1024;

/**
 * Reads files' blocks and hashes them on a worker thread: the CLI's main thread meanwhile sends
 * earlier blocks (its event loop is free for the sockets), and the two cores overlap.
 */
export class BlockReadThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (err: Error) => void }>();
  private error: Error | undefined;

  constructor() {
    this.worker = new Worker(THREAD, { eval: true });
    // An idle thread must not keep the process alive.
    this.worker.unref();
    this.worker.on("message", (r: Reply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.resolve(r);
    });
    const fail = (err: Error) => {
      this.error ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => fail(new Error(`The block reading thread exited (code ${code})`)));
  }

  /**
   * Reads `data.length` bytes at `position` of the open file `fd` into `data`, which must be a
   * view of a SharedArrayBuffer (see sharedBuffer), and answers their SHA-256 (hex) once all
   * are read. `data` and `fd` must be left alone until it settled. Fails if the file ends early.
   */
  async readAndHash(fd: number, data: Uint8Array, position: number): Promise<string> {
    const sab = data.buffer;
    if (!(sab instanceof SharedArrayBuffer)) throw new TypeError("readAndHash needs a view of a SharedArrayBuffer");
    if (this.error) throw this.error;
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.postMessage({ id, fd, sab, offset: data.byteOffset, length: data.byteLength, position, chunk: READ_CHUNK });
    const r = await reply;
    if (r.error !== undefined) throw new Error(r.error);
    if (r.hex === undefined) throw new ShortReadError(r.bytes ?? 0);
    return r.hex;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** The file ended before the requested bytes were read (it shrank). */
export class ShortReadError extends Error {
  constructor(readonly bytes: number) {
    super(`The file ended after ${bytes} bytes`);
  }
}

/** A Buffer in shared memory, which the thread can fill without a copy. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}
