import { closeSync, fdatasync, ftruncateSync, openSync, read, readSync, write, writeSync } from "node:fs";

/** Reads and writes up to this size run synchronously (see UpperFile). */
export const SYNC_IO_MAX = 64 * 1024;

/**
 * An open upper file (a changed file's local bytes, or a commit snapshot's side file), with the
 * subset of FileHandle's API the content store uses.
 *
 * Opening, closing, truncating and I/O of up to 64 KiB are synchronous calls on the main
 * thread. Upper files live on the local disk (the journal's directory, never the mount), and
 * those calls take microseconds in the page cache, while an fs.promises call costs two thread
 * hand-overs through libuv's pool (a futex wake, an eventfd write, an epoll wake-up): on the
 * 2-core test machine those were most of a small file's create–write–close (docs/benchmarks.md,
 * "Small files"). Larger I/O and fdatasync, which may wait for the disk, stay in the pool.
 */
export class UpperFile {
  private closed = false;
  /** Calls in libuv's pool right now: close waits for them, as FileHandle's does (the fd number must not be reused under them). */
  private inPool = 0;
  private poolDrained: Array<() => void> = [];

  private constructor(readonly fd: number) {}

  static open(path: string, flags: string | number, mode?: number): UpperFile {
    return new UpperFile(openSync(path, flags, mode));
  }

  async read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    this.open_();
    if (length <= SYNC_IO_MAX) {
      let done = 0;
      while (done < length) {
        const n = readSync(this.fd, buf, offset + done, length - done, position + done);
        if (n === 0) break;
        done += n;
      }
      return { bytesRead: done };
    }
    const n = await this.pooled<number>((cb) => read(this.fd, buf, offset, length, position, cb));
    return { bytesRead: n };
  }

  /** Writes all of it, or throws (some bytes may have landed). */
  async write(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    const { done, error } = await this.writeUpTo(buf, offset, length, position);
    if (error) throw error;
    return { bytesWritten: done };
  }

  /**
   * Writes as much as the disk takes: when a write fails after some bytes landed (ENOSPC), those
   * count, as write(2) returns a short count; only a failure before the first byte throws.
   */
  async writeSome(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    const { done, error } = await this.writeUpTo(buf, offset, length, position);
    if (error && done === 0) throw error;
    return done;
  }

  /** writeSome for at most SYNC_IO_MAX bytes, synchronously. */
  writeSomeSync(buf: Buffer, offset: number, length: number, position: number): number {
    if (length > SYNC_IO_MAX) throw new RangeError(`a synchronous write of ${length} bytes (at most ${SYNC_IO_MAX})`);
    this.open_();
    let done = 0;
    try {
      while (done < length) done += writeSync(this.fd, buf, offset + done, length - done, position + done);
    } catch (err) {
      if (done === 0) throw err;
    }
    return done;
  }

  private async writeUpTo(buf: Buffer, offset: number, length: number, position: number): Promise<{ done: number; error?: unknown }> {
    this.open_();
    let done = 0;
    try {
      if (length <= SYNC_IO_MAX) {
        while (done < length) done += writeSync(this.fd, buf, offset + done, length - done, position + done);
      }
      while (done < length) {
        const at = done;
        done += await this.pooled<number>((cb) => write(this.fd, buf, offset + at, length - at, position + at, cb));
      }
      return { done };
    } catch (error) {
      return { done, error };
    }
  }

  async truncate(size: number): Promise<void> {
    this.open_();
    ftruncateSync(this.fd, size);
  }

  async datasync(): Promise<void> {
    await this.pooled<void>((cb) => fdatasync(this.fd, (err) => cb(err, undefined)));
  }

  /** Closes now if nothing runs in the pool (true); false leaves it open for close(). */
  closeSync(): boolean {
    if (this.closed) return true;
    if (this.inPool > 0) return false;
    this.closed = true;
    closeSync(this.fd);
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.inPool > 0) await new Promise<void>((res) => this.poolDrained.push(res));
    closeSync(this.fd);
  }

  /** Throws EBADF once closed: the fd number may belong to another file by now. */
  private open_(): void {
    if (this.closed) throw Object.assign(new Error("upper file closed"), { code: "EBADF" });
  }

  /** Runs one callback-style fs call in the pool, counted so that close waits for it. */
  private pooled<T>(call: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
    this.open_();
    this.inPool++;
    return new Promise<T>((res, rej) =>
      call((err, value) => {
        if (--this.inPool === 0) for (const wake of this.poolDrained.splice(0)) wake();
        if (err) rej(err);
        else res(value);
      }),
    );
  }
}
