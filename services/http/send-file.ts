import type { FileHandle } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { FastifyReply } from "fastify";

/** Bytes read from a file per write to the socket. */
export const SEND_CHUNK = 1 << 20;
/** Free send buffers kept for reuse (a send holds two: one read from the file while the other goes out). */
const FREE_SEND_BUFFERS = 8;

/** Bytes [start, end) of an open file; the sender closes it. */
export interface FilePart {
  fh: FileHandle;
  start: number;
  end: number;
}

/** What a response body is made of: bytes at hand, a file range, or a stream. */
export type SendPart = Buffer | FilePart | Readable;

const free: Buffer[] = [];

function takeBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
}

function isFilePart(p: SendPart): p is FilePart {
  return !Buffer.isBuffer(p) && "fh" in p;
}

/**
 * Sends a body of `length` bytes made of `parts`, taking the reply over from fastify. File ranges
 * go out through two reused 1 MiB buffers, each refilled only once the socket has taken its last
 * write (the write's callback), so sending allocates nothing per chunk (`createReadStream` made a
 * fresh 1 MiB buffer per chunk: page faults and GC on the server for every block read).
 * Everything that can fail with a clear status must be checked before: once this is called the
 * status and headers are sent, and a failure mid-body (a file shorter than promised, a read
 * error) cuts the connection, so the client sees a short body, never wrong bytes. A client that
 * goes away ends the send; every file is closed either way.
 */
export async function sendParts(reply: FastifyReply, status: number, headers: Record<string, string | number>, length: number, parts: AsyncIterable<SendPart>): Promise<void> {
  const iter = parts[Symbol.asyncIterator]();
  // The first part before anything is sent: a block missing there is still a clean 404.
  let next = await iter.next();
  reply.hijack();
  const res = reply.raw;
  const out = new Sender(res, length);
  try {
    res.writeHead(status, { ...(reply.getHeaders() as Record<string, string>), ...headers, "content-length": length });
    for (; !next.done; next = await iter.next()) {
      const part = next.value;
      if (Buffer.isBuffer(part)) await out.write(part);
      else if (isFilePart(part)) await out.file(part);
      else for await (const chunk of part as AsyncIterable<Buffer>) await out.write(chunk);
    }
    await out.flushed();
    if (out.sent !== length) throw new Error(`the body ended after ${out.sent} of its ${length} bytes`);
    res.end();
  } catch (err) {
    reply.log.warn({ err }, "response cut short");
    res.destroy();
    // A file part taken but not (wholly) sent; closing a closed one does nothing.
    if (!next.done && isFilePart(next.value)) await next.value.fh.close().catch(() => {});
  } finally {
    out.release();
    // Stops a generator of parts cut short (its open files are closed as they are sent).
    await iter.return?.();
  }
}

/** One part as the parts of a body. */
export async function* onePart(part: SendPart): AsyncGenerator<SendPart> {
  yield part;
}

/** Writes to one response, at most two file chunks in flight, and knows when the client is gone. */
class Sender {
  private readonly bufs = [takeBuffer(), takeBuffer()];
  /** The last write of each buffer; the buffer is refilled only after it. */
  private readonly inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  /** Whether the socket may still read a buffer (its write has not called back). */
  private readonly busy = [false, false];
  private next = 0;
  private gone: Error | undefined;
  private readonly closed: Promise<never>;
  /** Bytes handed to the socket so far. */
  sent = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly length: number,
  ) {
    this.closed = new Promise<never>((_, fail) => {
      res.once("close", () => {
        if (!res.writableFinished) {
          this.gone = new Error("the client went away");
          fail(this.gone);
        }
      });
    });
    // Nobody may be waiting on it when the client leaves.
    this.closed.catch(() => {});
  }

  /** Sends `chunk`; resolves once the socket took it (rejects if the client left). */
  write(chunk: Buffer, slot?: number): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    if (this.sent + chunk.length > this.length) return Promise.reject(new Error(`the body is longer than its ${this.length} bytes`));
    this.sent += chunk.length;
    if (slot !== undefined) this.busy[slot] = true;
    const done = new Promise<void>((ok, fail) =>
      this.res.write(chunk, (err) => {
        if (slot !== undefined) this.busy[slot] = false;
        if (err) fail(err);
        else ok();
      }),
    );
    return Promise.race([done, this.closed]);
  }

  /** Sends [start, end) of a file through the two buffers (one read while the other is written), then closes it. */
  async file(part: FilePart): Promise<void> {
    try {
      let pos = part.start;
      while (pos < part.end) {
        const k = this.next;
        await this.inFlight[k];
        const buf = this.bufs[k]!;
        const { bytesRead } = await part.fh.read(buf, 0, Math.min(buf.length, part.end - pos), pos);
        if (bytesRead === 0) throw new Error(`a file ended at ${pos}, before the ${part.end} bytes it should hold`);
        const sending = this.write(buf.subarray(0, bytesRead), k);
        // The next wait on this buffer (or flushed) rethrows a failure; not unhandled meanwhile.
        sending.catch(() => {});
        this.inFlight[k] = sending;
        this.next = 1 - k;
        pos += bytesRead;
      }
    } finally {
      await part.fh.close().catch(() => {});
    }
  }

  async flushed(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Gives back the buffers the socket is done with (one still in a write that never called back is left to the GC). */
  release(): void {
    this.bufs.forEach((buf, k) => {
      if (!this.busy[k] && free.length < FREE_SEND_BUFFERS) free.push(buf);
    });
  }
}
