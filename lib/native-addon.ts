import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** What native/fuse-fd (C, built by node-gyp at `npm install`) offers: the steps Node cannot do. */
export interface FuseFdAddon {
  /** A connected AF_UNIX stream pair, both ends close-on-exec. */
  socketpair(): [number, number];
  /** The fd queued on `sock` as SCM_RIGHTS, or -1 if none is (never blocks). */
  recvFd(sock: number): number;
  /** FUSE_DEV_IOC_CLONE: a new /dev/fuse fd serving the same connection as `fd`. */
  cloneFd(fd: number): number;
  /** FUSE_DEV_IOC_BACKING_OPEN: registers `fileFd` for passthrough; returns its backing id (needs CAP_SYS_ADMIN). */
  backingOpen(fuseFd: number, fileFd: number): number;
  /** FUSE_DEV_IOC_BACKING_CLOSE. */
  backingClose(fuseFd: number, backingId: number): void;
  /**
   * Sets O_NONBLOCK on `fd` and calls `onReady` on the main thread whenever it is readable,
   * from the event loop's own epoll (status < 0: poll reported an error; the watch stopped).
   */
  watch(fd: number, onReady: (status: number) => void): FdWatch;
  /** Stops a watch (idempotent). */
  unwatch(watch: FdWatch): void;
  /** One non-blocking read(2) into `buf`: the byte count, or minus the errno (never throws for I/O errors). */
  readInto(fd: number, buf: Buffer): number;
  /**
   * One writev(2) of a FUSE reply: the 16-byte header (length, `error` as sent: 0 or minus an
   * errno, `unique`) built natively, then `payload` if given. The byte count, or minus the errno
   * (never throws for I/O errors). Absent from addons built before it (callers fall back).
   */
  reply?(fd: number, unique: number, error: number, payload?: Buffer): number;
  /**
   * A Buffer of `size` bytes whose memory starts on a page boundary (for O_DIRECT writes), freed
   * when it is collected. Absent from addons built before it (callers fall back).
   */
  alignedBuffer?(size: number): Buffer;
  /**
   * FUSE over io_uring (native/fuse-fd/fuse_ring.c): sets up a ring of `depth` entries per kernel
   * queue (one per possible CPU) with `payloadSize`-byte buffers; `onReady` runs on the main
   * thread when requests may be waiting. Returns the queue count; throws if io_uring is unusable.
   */
  ringStart?(fuseFd: number, depth: number, payloadSize: number, onReady: (status: number) => void): number;
  /** Registers the entries (after INIT is answered): 0, or minus the errno the kernel refused with. */
  ringRegister?(): number;
  /** The next ring request copied into `buf` in /dev/fuse's layout: its length, 0 if none waits, or minus an errno (ring over). */
  ringRead?(buf: Buffer): number;
  /** Stops the ring (idempotent). Replies through `reply` go to the ring for the requests it delivered. */
  ringStop?(): void;
  /**
   * One non-blocking sendmsg(2) of `bytes` on the connected unix socket `sock`, with `fd` attached
   * as SCM_RIGHTS (fd < 0: none; an array: every one of them, at most 253, in that one message).
   * The byte count, or minus the errno (-EAGAIN: the socket's buffer is full). Absent from addons
   * built before it (local block reads are then off).
   */
  sendFd?(sock: number, bytes: Buffer, fd: number | readonly number[]): number;
  /**
   * On the thread pool: connects to the unix socket at `path`, sends `request`, reads the reply
   * until the peer closes (at most `maxReply` bytes), keeping the first `maxFds` (default 1, at
   * most 253) fds passed with it, in the order they came (close-on-exec; any further one is
   * closed; on a rejection none is kept). Each blocking step gives up after `timeoutMs`
   * (ETIMEDOUT). The caller owns `fds` (`fd`: the first, -1: none) and must close them. Addons
   * built before `maxFds` ignore it and keep one fd, and answer no `fds`.
   */
  fdRequest?(path: string, request: Buffer, timeoutMs: number, maxReply: number, maxFds?: number): Promise<{ reply: Buffer; fd: number; fds?: number[] }>;
  /**
   * On the thread pool: copy_file_range(2) of `len` bytes from `fdIn` at `offIn` to `fdOut` at
   * `offOut` (the bytes never enter the process); resolves the count copied (short only where the
   * source ends). Rejects with an errno-coded Error where the kernel or file systems refuse (EXDEV,
   * ENOSYS, EINVAL): copy by hand then.
   */
  copyRange?(fdIn: number, offIn: number, fdOut: number, offOut: number, len: number): Promise<number>;
  /**
   * On the thread pool: a FUSE READ reply (`unique`) of `len` bytes of `fileFd` at `offset`,
   * spliced to `fuseFd` (header into a per-thread pipe, the file's pages after it, the pipe to
   * /dev/fuse: one copy per byte, none through the process). Resolves `len` once sent, or minus
   * the errno the kernel refused it with (ENOENT: the request was interrupted). Rejects with an
   * errno-coded Error when nothing was sent (ENODATA: the file holds fewer bytes; EPERM: no pipe
   * that large; EINVAL: not spliceable): answer by copying then. Absent from addons built before it.
   */
  spliceReply?(fuseFd: number, unique: number, fileFd: number, offset: number, len: number): Promise<number>;
  /** On the thread pool: posix_fadvise(WILLNEED) of `len` bytes of `fd` at `offset`; resolves 0 or the errno. */
  willNeed?(fd: number, offset: number, len: number): Promise<number>;
  /**
   * fdRequest whose request carries `fd` (SCM_RIGHTS on its first sendmsg): local block writes,
   * client side. The caller keeps `fd` open until the promise settles. Absent from addons built before it.
   */
  fdPutRequest?(path: string, request: Buffer, fd: number, timeoutMs: number, maxReply: number): Promise<{ reply: Buffer; fd: number }>;
  /**
   * On the thread pool: one request line read from the connected unix socket `sock` (poll +
   * recvmsg; Node's own reads would drop the fd passed with it), until its newline (`complete`,
   * not included), `maxBytes` or the peer's close, with the first fd passed with it (-1: none;
   * close-on-exec; the caller owns it). Rejects (ETIMEDOUT) after `timeoutMs`. `sock` must stay
   * open, and unread by Node, until it settles. Absent from addons built before it.
   */
  recvRequest?(sock: number, maxBytes: number, timeoutMs: number): Promise<{ request: Buffer; fd: number; complete: boolean }>;
  /**
   * On the thread pool: fills `buf` from `fd` at `position` (pread(2)s of at most 1 MiB, each
   * hashed right after its read, with the OpenSSL Node ships) and resolves the SHA-256 digest (32
   * bytes) of `buf`'s bytes, or undefined if the file ended before `buf` was full. Rejects with an
   * errno-coded Error. `buf` must not be touched until it settles. Absent from addons built before it.
   */
  readHashed?(fd: number, buf: Buffer, position: number): Promise<Buffer | undefined>;
  /**
   * On the thread pool: fsync(2) (fdatasync with `dataOnly`) of every fd of `fds` (at most 64) at
   * once, each on a thread of its own, so they share a journal commit and a disk cache flush.
   * Resolves once all returned; rejects with the first failure's errno-coded Error (every sync
   * still ran). Absent from addons built before it.
   */
  syncAll?(fds: number[], dataOnly: boolean): Promise<void>;
}

/** An fd watched by the addon (opaque). */
export type FdWatch = { readonly __brand: "FdWatch" };

const BUILT = join("native", "fuse-fd", "build", "Release", "fuse_fd.node");

let loaded: FuseFdAddon | undefined;

/** The addon if it is built (undefined otherwise: callers that can do without it fall back). */
export function fuseFdAddonIfBuilt(): FuseFdAddon | undefined {
  try {
    return fuseFdAddon();
  } catch {
    return undefined;
  }
}

/**
 * Loads the addon from the project root (found upward from this module: it runs from fuse/ in
 * tests and from dist/fuse/ when built). Throws a one-line error naming the fix if it is not built.
 */
export function fuseFdAddon(): FuseFdAddon {
  if (loaded) return loaded;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, BUILT);
    if (existsSync(candidate)) {
      loaded = createRequire(import.meta.url)(candidate) as FuseFdAddon;
      return loaded;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`silo's native addon ${BUILT} is not built: run 'npm run build:native' in the silo checkout (needs python3, make and g++)`);
}
