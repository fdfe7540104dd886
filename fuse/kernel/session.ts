import { appendFileSync, read, readFileSync, write, writeSync, writevSync } from "node:fs";
import { constants } from "node:os";
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_MIN_MINOR_VERSION, FUSE_ROOT_ID, InitFlag, MAX_PAGES, MAX_WRITE, OPCODE_NAMES, PASSTHROUGH_STACK_DEPTH, READ_BUFFER_SIZE, Size } from "./abi.js";
import {
  decodeHeader,
  decodeRequest,
  encodeAttrOut,
  encodeCount,
  encodeCreateOut,
  encodeDirents,
  encodeEntry,
  encodeInitOut,
  encodeInvalEntry,
  encodeInvalInode,
  encodeLkOut,
  encodeLseekOut,
  encodeOpenOut,
  encodeStatfs,
  errorReply,
  type InitIn,
  MalformedRequest,
  outHeader,
  type Request,
} from "./codec.js";
import type { ConnectionInfo, FileSlice, Filesystem } from "./filesystem.js";
import { type FdWatch, fuseFdAddonIfBuilt } from "../../lib/native-addon.js";
import { type AttrReply, type BackingFiles, type Entry, Errno, type Notifier, type Opened, type RequestContext } from "./types.js";

const E = constants.errno;
const SMALL_WRITE = 64 * 1024;

/** Requests read per readiness callback before the event loop gets a turn (replies, timers, I/O). */
const POLL_BATCH = 32;

/** Read buffers kept for reuse after the WRITEs whose data they held have settled (lendWriteBuffers). */
const SPARE_READ_BUFFERS = 4;

export interface SessionOptions {
  /**
   * How requests are read. "poll" (the default where the native addon is built): the main thread
   * waits for /dev/fuse in the event loop's epoll and reads it non-blocking, no thread hop per
   * request. "threads": `readers` fs.reads stay outstanding in libuv's thread pool (the fallback;
   * `SILO_FUSE_READER=threads` in the environment selects it too).
   */
  reader?: "poll" | "threads";
  /**
   * Reads of /dev/fuse kept outstanding ("threads"). Each holds a libuv thread-pool thread while
   * the kernel has nothing to send, so keep it well below UV_THREADPOOL_SIZE (the daemons raise that).
   */
  readers?: number;
  /** O_TRUNC reaches open() instead of a setattr(size 0) before it. */
  atomicOTrunc?: boolean;
  /** The kernel buffers writes and sends them in large pieces later (changes mtime/size semantics). */
  writebackCache?: boolean;
  /** The kernel drops a file's cached pages when it sees a changed mtime or size. */
  autoInvalData?: boolean;
  /**
   * The file system clears setuid/setgid itself on write, truncate and chown (WRITE's
   * FUSE_WRITE_KILL_SUIDGID, SETATTR's killSuidgid): HANDLE_KILLPRIV_V2. The kernel then marks
   * inodes it has seen without security.capability as needing no check, and stops asking
   * getxattr("security.capability") before every write (one round trip of two per small write).
   */
  handleKillpriv?: boolean;
  /**
   * Ask for FUSE_PASSTHROUGH (when the kernel offers it, the addon is built and there is no
   * writeback cache, which the kernel does not combine with it): `backing` is then set, and
   * opens may answer a `backingId`. `SILO_FUSE_PASSTHROUGH=off` in the environment turns it off.
   */
  passthrough?: boolean;
  /** "auto": readdirplus for the first listing of a directory, plain readdir after. */
  readdirplus?: "auto" | "always" | "off";
  /**
   * WRITE data is handed to the file system as a view into the buffer the request was read into,
   * and that buffer is read into again once the op has settled: no copy of a small write, no
   * fresh 1 MiB buffer (and its page faults) after a large one. Only for a file system whose
   * write() uses its data until its op settles and keeps no reference after.
   */
  lendWriteBuffers?: boolean;
  /**
   * Serve requests over FUSE's io_uring interface where the kernel allows it (enable_uring) and
   * the addon has it; /dev/fuse otherwise. `SILO_FUSE_RING=on|off` in the environment decides
   * when this is not given.
   */
  ring?: boolean;
  /** Answer ETIMEDOUT for an op still running after this long (the op's late answer is dropped). */
  opTimeoutMs?: number;
  /** The errno for an error an op threw that is not an Errno (undefined: EIO, logged). */
  errno?: (err: unknown) => number | undefined;
  log?: (msg: string) => void;
}

/** Thrown by ops to answer an errno (re-exported for file systems). */
export { Errno };

/**
 * Request counts and op times by opcode, kept in arrays indexed by opcode: two string-keyed Map
 * lookups and updates per request were a visible share of a GETATTR's few microseconds.
 */
class SessionStats {
  /** The largest READ and WRITE seen, and the read buffers allocated (lendWriteBuffers). */
  maxRead = 0;
  maxWrite = 0;
  readBuffers = 0;
  /** Requests that came through io_uring (SessionOptions.ring). */
  ringRequests = 0;
  /** READ replies spliced from a file (FileSlice), and those sent by copying instead (splice unusable, refused, or SILO_FUSE_SPLICE=copy). */
  splicedReplies = 0;
  copiedSlices = 0;
  private readonly counts: number[] = [];
  private readonly ms: number[] = [];

  counted(opcode: number): void {
    this.counts[opcode] = (this.counts[opcode] ?? 0) + 1;
  }

  timed(opcode: number, ms: number): void {
    this.ms[opcode] = (this.ms[opcode] ?? 0) + ms;
  }

  /** Requests served by opcode name. */
  get requests(): Map<string, number> {
    return byName(this.counts);
  }

  /** Milliseconds the ops took, by opcode name (answered ones). */
  get opMs(): Map<string, number> {
    return byName(this.ms);
  }
}

function byName(values: number[]): Map<string, number> {
  const m = new Map<string, number>();
  values.forEach((v, opcode) => {
    if (v !== undefined) m.set(OPCODE_NAMES[opcode] ?? String(opcode), v);
  });
  return m;
}

class Ctx implements RequestContext {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly t0 = performance.now();
  /** A lock wait (SETLKW) lasts as long as the lock is held elsewhere: no op timeout applies. */
  readonly waits: boolean;
  answered = false;
  interrupted = false;
  private controller?: AbortController;
  constructor(req: Request) {
    this.uid = req.uid;
    this.gid = req.gid;
    this.pid = req.pid;
    this.waits = req.args.op === "SETLKW";
  }
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.interrupted && !this.controller.signal.aborted) this.controller.abort();
    return this.controller.signal;
  }
  interrupt(): void {
    this.interrupted = true;
    this.controller?.abort();
  }
}

/** A reply: its payload parts, and the inodes it names (each gains one kernel reference if it is delivered). */
interface Reply {
  parts: Buffer[];
  refs?: number[];
  /** Runs if the kernel refuses the reply (an OPEN whose caller was interrupted: no RELEASE will come). */
  undelivered?: () => void;
  /** A READ's bytes as a slice of an open file (no parts then): spliced, or copied (sendSlice). */
  file?: FileSlice;
}
const EMPTY: Reply = { parts: [] };


/**
 * One FUSE connection: reads requests from the /dev/fuse fd, serves them on a Filesystem
 * (many at once: every request is answered when its op settles, in any order), counts the
 * kernel's inode references, handles INIT, FORGET, INTERRUPT and DESTROY itself, and sends
 * invalidation notifications. Ends when the kernel ends the connection (unmount or abort).
 */
export class FuseSession implements Notifier {
  info?: ConnectionInfo;
  /** Backing files for passthrough opens, once INIT agreed on FUSE_PASSTHROUGH (else undefined). */
  backing?: BackingFiles;
  /** Resolves once INIT is answered. */
  readonly ready: Promise<ConnectionInfo>;
  /** Resolves when the connection has ended and the file system was told (destroy). */
  readonly ended: Promise<void>;
  /** Request counts by opcode name, and the largest READ and WRITE seen (for tests and benchmarks). */
  readonly stats = new SessionStats();
  /** Read buffers free for the next read (lendWriteBuffers). */
  private readonly spareBuffers: Array<Buffer<ArrayBuffer>> = [];
  private readonly inflight = new Map<number, Ctx>();
  private readonly refs = new Map<number, number>();
  /** FORGETs read but not applied yet (deferForget). */
  private readonly forgets: Array<[number, number]> = [];
  private readonly log: (msg: string) => void;
  private resolveReady!: (info: ConnectionInfo) => void;
  private rejectReady!: (err: Error) => void;
  private resolveEnded!: () => void;
  private readersLeft = 0;
  private sweep?: NodeJS.Timeout;
  private over = false;
  /** The addon's reply writer, if the built addon has one (sendReply). */
  private readonly nativeReply = nativeReplyWriter();
  /** The addon's splice of a file's bytes as a reply, unless unbuilt or SILO_FUSE_SPLICE is off or copy (sendSlice). */
  private readonly spliceReply = spliceReplyWriter();

  constructor(
    private readonly fd: number,
    private readonly fs: Filesystem,
    private readonly opts: SessionOptions = {},
  ) {
    this.log = opts.log ?? ((m) => process.stderr.write(`fuse: ${m}\n`));
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => {});
    this.ended = new Promise((res) => (this.resolveEnded = res));
  }

  /** How this session reads requests (decided at start). */
  reader: "poll" | "threads" = "threads";
  /** Whether requests come through io_uring (decided at INIT; FORGET, INTERRUPT and notifications stay on /dev/fuse). */
  ring = false;

  /** Starts serving; resolves once the kernel's INIT is answered. */
  start(): Promise<ConnectionInfo> {
    const wanted = this.opts.reader ?? (process.env.SILO_FUSE_READER === "threads" ? "threads" : "poll");
    if (wanted !== "poll" || !this.pollLoop()) {
      const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4) || 4;
      const readers = Math.max(1, this.opts.readers ?? Math.min(3, pool - 2));
      if (readers + 2 > pool) this.log(`warning: ${readers} readers of /dev/fuse with UV_THREADPOOL_SIZE=${pool}: file I/O may queue behind them`);
      this.readersLeft = readers;
      for (let i = 0; i < readers; i++) this.readLoop();
    }
    if (this.opts.opTimeoutMs) {
      const limit = this.opts.opTimeoutMs;
      this.sweep = setInterval(() => {
        const now = performance.now();
        for (const [unique, ctx] of this.inflight) {
          if (now - ctx.t0 < limit || ctx.answered || ctx.waits) continue;
          ctx.answered = true;
          ctx.interrupt();
          this.inflight.delete(unique);
          this.log(`request ${unique} ran longer than ${limit} ms: answered ETIMEDOUT`);
          this.sendReply(unique, -E.ETIMEDOUT);
        }
      }, Math.min(1000, limit)).unref();
    }
    return this.ready;
  }

  /** Requests being served right now. */
  get inFlight(): number {
    return this.inflight.size;
  }

  /** Inodes the kernel currently holds references to (root excluded). */
  get knownInodes(): number {
    return this.refs.size;
  }

  /**
   * Reads requests on the main thread when /dev/fuse is readable (native addon: epoll + O_NONBLOCK).
   * False if the addon is not built (or predates `watch`): the caller falls back to thread-pool reads.
   */
  private pollLoop(): boolean {
    const addon = fuseFdAddonIfBuilt();
    if (typeof addon?.watch !== "function") return false;
    let buf = this.readBuffer();
    let watch: FdWatch | undefined;
    const stop = () => {
      if (watch) addon.unwatch(watch);
      watch = undefined;
      this.readerDone();
    };
    // Requests the last callback read. A lone requester (one request at a time, replies go out
    // after the callback) is served with one read per wake-up: reading on until EAGAIN would
    // cost a failed read(2) per request. With requests in flight or a burst last time, read on.
    let lastBurst = 0;
    const onReady = (status: number) => {
      const limit = this.inflight.size > 0 || lastBurst > 1 ? POLL_BATCH : 1;
      lastBurst = 0;
      for (let k = 0; k < limit; k++) {
        if (this.over || !watch) return;
        const n = addon.readInto(this.fd, buf);
        if (n < 0) {
          const errno = -n;
          // Nothing (more) to read; if poll reported an error, the connection is gone.
          if (errno === E.EAGAIN && status >= 0) return;
          // ENOENT: the request we were about to read was interrupted before we got it.
          if (errno === E.EINTR || errno === E.ENOENT) continue;
          if (errno !== E.EAGAIN && errno !== E.ENODEV && errno !== E.EBADF && errno !== E.ECONNABORTED) this.log(`reading /dev/fuse failed: errno ${errno}`);
          return stop();
        }
        if (n === 0) return stop();
        lastBurst++;
        buf = this.dispatchRead(buf, n);
      }
    };
    try {
      watch = addon.watch(this.fd, onReady);
    } catch (err) {
      this.log(`polling /dev/fuse failed (${(err as Error).message}): reading it through the thread pool`);
      return false;
    }
    this.reader = "poll";
    this.readersLeft = 1;
    return true;
  }

  /** Dispatches the request read into `buf`; returns the buffer to read the next one into. */
  private dispatchRead(buf: Buffer<ArrayBuffer>, n: number): Buffer<ArrayBuffer> {
    let keep = false;
    try {
      keep = this.dispatch(buf, n);
    } catch (e) {
      this.log(`dispatch failed: ${(e as Error).stack ?? String(e)}`);
    }
    // A WRITE's data is a view into the buffer until its op settles: read into another one.
    return keep ? this.readBuffer() : buf;
  }

  /** A buffer to read the next request into: a spare one, or a new one. */
  private readBuffer(): Buffer<ArrayBuffer> {
    const spare = this.spareBuffers.pop();
    if (spare) return spare;
    this.stats.readBuffers++;
    return Buffer.allocUnsafe(READ_BUFFER_SIZE);
  }

  private readLoop(): void {
    let buf = this.readBuffer();
    const next = () => {
      if (this.over) return this.readerDone();
      read(this.fd, buf, 0, buf.length, null, (err, n) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // ENOENT: the request we were about to read was interrupted before we got it.
          if (code === "EINTR" || code === "EAGAIN" || code === "ENOENT") return next();
          if (code !== "ENODEV" && code !== "EBADF" && code !== "ECONNABORTED") this.log(`reading /dev/fuse failed: ${err.message}`);
          return this.readerDone();
        }
        if (n === 0) return this.readerDone();
        buf = this.dispatchRead(buf, n);
        next();
      });
    };
    next();
  }

  private readerDone(): void {
    this.over = true;
    if (--this.readersLeft > 0) return;
    clearInterval(this.sweep);
    if (this.ring) fuseFdAddonIfBuilt()?.ringStop?.();
    this.ring = false;
    for (const ctx of this.inflight.values()) ctx.interrupt();
    // SILO_FUSE_STATS=FILE: a line per session with the requests served and the time their ops took.
    if (process.env.SILO_FUSE_STATS) {
      const opMs = this.stats.opMs;
      const ops = [...this.stats.requests].map(([op, n]) => `${op} ${n}${opMs.has(op) ? ` (${opMs.get(op)!.toFixed(0)} ms)` : ""}`);
      appendFileSync(process.env.SILO_FUSE_STATS, `${new Date().toISOString()} ${ops.join(", ")}\n`);
    }
    this.rejectReady(new Error("the FUSE connection ended before INIT"));
    try {
      this.fs.destroy?.();
    } catch (err) {
      this.log(`destroy failed: ${(err as Error).message}`);
    }
    this.resolveEnded();
  }

  /** Serves one request; true if it keeps a view into `buf` (WRITE data). */
  private dispatch(buf: Buffer<ArrayBuffer>, n: number): boolean {
    let req: Request;
    try {
      req = decodeRequest(buf, n);
    } catch (err) {
      if (!(err instanceof MalformedRequest) || n < Size.IN_HEADER) throw err;
      const h = decodeHeader(buf);
      this.log(`malformed request (${err.message}): answered EINVAL`);
      this.sendReply(h.unique, -E.EINVAL);
      return false;
    }
    const a = req.args;
    this.stats.counted(req.opcode);
    switch (a.op) {
      case "INIT":
        this.init(req.unique, a.init);
        return false;
      case "FORGET":
        this.deferForget(req.nodeid, a.nlookup);
        return false;
      case "BATCH_FORGET":
        for (const f of a.forgets) this.deferForget(f.ino, f.nlookup);
        return false;
      case "INTERRUPT":
        this.interrupt(req.unique, a.target);
        return false;
      case "DESTROY":
        this.sendReply(req.unique, 0);
        return false;
      case "UNSUPPORTED":
        this.sendReply(req.unique, -E.ENOSYS);
        return false;
      case "WRITE":
        if (this.opts.lendWriteBuffers) {
          this.serve(req, () => {
            if (this.spareBuffers.length < SPARE_READ_BUFFERS) this.spareBuffers.push(buf);
          });
          return true;
        }
        // Small writes are copied out, so the 1 MiB read buffer is reused; large ones are
        // served from it (and the reader takes a fresh buffer).
        if (a.data.length <= SMALL_WRITE) {
          a.data = Buffer.from(a.data);
          this.serve(req);
          return false;
        }
        this.serve(req);
        return true;
      default:
        this.serve(req);
        return false;
    }
  }

  private init(unique: number, k: InitIn): void {
    if (k.major < FUSE_KERNEL_VERSION || (k.major === FUSE_KERNEL_VERSION && k.minor < FUSE_MIN_MINOR_VERSION)) {
      this.log(`the kernel speaks FUSE ${k.major}.${k.minor}; silo needs ${FUSE_KERNEL_VERSION}.${FUSE_MIN_MINOR_VERSION} or newer`);
      this.send([errorReply(unique, E.EPROTO)]);
      return;
    }
    if (k.major > FUSE_KERNEL_VERSION) {
      // Answer with our major only: the kernel then sends INIT again with ours.
      const out = encodeInitOut({ major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, maxReadahead: 0, flags: 0, maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGran: 0, maxPages: 0 });
      this.send([outHeader(Size.OUT_HEADER + out.length, 0, unique), out]);
      return;
    }
    let want =
      InitFlag.ASYNC_READ +
      InitFlag.BIG_WRITES +
      InitFlag.MAX_PAGES +
      InitFlag.PARALLEL_DIROPS +
      InitFlag.ABORT_ERROR +
      InitFlag.ASYNC_DIO +
      InitFlag.CACHE_SYMLINKS +
      InitFlag.INIT_EXT;
    const plus = this.opts.readdirplus ?? "auto";
    if (plus !== "off") want += InitFlag.DO_READDIRPLUS;
    if (plus === "auto") want += InitFlag.READDIRPLUS_AUTO;
    if (this.opts.atomicOTrunc) want += InitFlag.ATOMIC_O_TRUNC;
    if (this.opts.writebackCache) want += InitFlag.WRITEBACK_CACHE;
    if (this.opts.autoInvalData) want += InitFlag.AUTO_INVAL_DATA;
    if (this.opts.handleKillpriv) want += InitFlag.HANDLE_KILLPRIV_V2;
    // Locks held by the file system; without these flags the kernel keeps them itself.
    if (this.fs.getlk && this.fs.setlk) want += InitFlag.POSIX_LOCKS + InitFlag.FLOCK_LOCKS;
    const addon = fuseFdAddonIfBuilt();
    const passthrough = this.opts.passthrough && process.env.SILO_FUSE_PASSTHROUGH !== "off" && !this.opts.writebackCache && typeof addon?.backingOpen === "function";
    if (passthrough) want += InitFlag.PASSTHROUGH;
    const ringOpen = this.openRing(k.flags);
    if (ringOpen) want += InitFlag.OVER_IO_URING;
    const flags = Number(BigInt(want) & BigInt(k.flags));
    const agreed = (BigInt(flags) & BigInt(InitFlag.PASSTHROUGH)) !== 0n;
    const info: ConnectionInfo = {
      major: FUSE_KERNEL_VERSION,
      minor: Math.min(k.minor, FUSE_KERNEL_MINOR_VERSION),
      kernelMinor: k.minor,
      kernelFlags: k.flags,
      flags,
      maxWrite: MAX_WRITE,
      maxReadahead: k.maxReadahead,
    };
    const out = encodeInitOut({
      major: info.major,
      minor: info.minor,
      maxReadahead: k.maxReadahead,
      flags,
      // Background requests (readahead, async reads) the kernel keeps in flight at once.
      maxBackground: 64,
      congestionThreshold: 48,
      maxWrite: MAX_WRITE,
      timeGran: 1,
      maxPages: MAX_PAGES,
      // The kernel enables passthrough only with a stack depth (linux/fuse.h, fuse_init_out).
      maxStackDepth: agreed ? PASSTHROUGH_STACK_DEPTH : 0,
    });
    if (!this.send([outHeader(Size.OUT_HEADER + out.length, 0, unique), out])) return;
    this.info = info;
    if (ringOpen) this.registerRing((BigInt(flags) & BigInt(InitFlag.OVER_IO_URING)) !== 0n);
    if (agreed && addon) {
      const fd = this.fd;
      this.backing = { open: (fileFd) => addon.backingOpen(fd, fileFd), close: (id) => addon.backingClose(fd, id) };
    }
    try {
      this.fs.init?.(info);
    } catch (err) {
      this.log(`init failed: ${(err as Error).message}`);
    }
    this.resolveReady(info);
  }

  /**
   * Sets up the io_uring ring before INIT is answered: once INIT agrees on FUSE_OVER_IO_URING the
   * kernel holds every request until all its queues have an entry, so the flag is offered only
   * when the ring exists. False: /dev/fuse alone.
   */
  private openRing(kernelFlags: number): boolean {
    const wanted = this.opts.ring ?? process.env.SILO_FUSE_RING === "on";
    const addon = fuseFdAddonIfBuilt();
    if (!wanted) return false;
    const unusable =
      this.reader !== "poll" || typeof addon?.ringStart !== "function"
        ? "it needs the native addon's poll reader"
        : (BigInt(kernelFlags) & BigInt(InitFlag.OVER_IO_URING)) === 0n
          ? "the kernel does not offer it"
          : !uringEnabled()
            ? "/sys/module/fuse/parameters/enable_uring is off"
            : undefined;
    if (unusable || !addon?.ringStart) {
      this.log(`io_uring not used (${unusable}): serving /dev/fuse`);
      return false;
    }
    let buf = this.readBuffer();
    const onReady = () => {
      for (;;) {
        if (!this.ring) return;
        const n = addon.ringRead!(buf);
        if (n === 0) return;
        if (n < 0) {
          // ENOTCONN/ECANCELED: the kernel stopped the ring (unmount, abort); /dev/fuse ends the session.
          if (-n !== E.ENOTCONN && -n !== E.ECANCELED && -n !== E.ENODEV) this.log(`fuse ring failed: errno ${-n}`);
          addon.ringStop!();
          this.ring = false;
          return;
        }
        this.stats.ringRequests++;
        buf = this.dispatchRead(buf, n);
      }
    };
    try {
      addon.ringStart(this.fd, RING_DEPTH, MAX_WRITE, onReady);
    } catch (err) {
      this.log(`io_uring unavailable (${(err as Error).message}): serving /dev/fuse`);
      return false;
    }
    this.ring = true;
    return true;
  }

  /** Registers the ring's entries once INIT is answered (the kernel refuses them before). */
  private registerRing(agreed: boolean): void {
    const addon = fuseFdAddonIfBuilt()!;
    const rc = agreed ? addon.ringRegister!() : -E.EOPNOTSUPP;
    if (rc === 0) return;
    // A refused register makes the kernel give up the ring for this connection: /dev/fuse serves.
    if (agreed) this.log(`io_uring registration refused (errno ${-rc}): serving /dev/fuse`);
    addon.ringStop!();
    this.ring = false;
  }

  /**
   * Forgets wait for a turn of the event loop of their own. An op allocates its inode number in
   * its last synchronous step and its reply goes out in the promise jobs right after, but the
   * poll reader dispatches several requests per callback before those jobs run: a FORGET read
   * in the same callback as a LOOKUP answering the same number would otherwise drop the number
   * before that reply (and its reference) is counted, and the kernel would hold a number the
   * file system no longer knows (ESTALE).
   */
  private deferForget(ino: number, nlookup: number): void {
    if (this.forgets.length === 0) setImmediate(() => this.applyForgets());
    this.forgets.push([ino, nlookup]);
  }

  private applyForgets(): void {
    for (const [ino, nlookup] of this.forgets.splice(0)) this.forget(ino, nlookup);
  }

  private forget(ino: number, nlookup: number): void {
    if (ino === FUSE_ROOT_ID) return;
    const left = (this.refs.get(ino) ?? 0) - nlookup;
    if (left > 0) {
      this.refs.set(ino, left);
      return;
    }
    this.refs.delete(ino);
    try {
      this.fs.forget?.(ino);
    } catch (err) {
      this.log(`forget ${ino} failed: ${(err as Error).message}`);
    }
  }

  private interrupt(unique: number, target: number, retried = false): void {
    const ctx = this.inflight.get(target);
    if (ctx) {
      ctx.interrupt();
      return;
    }
    if (retried) {
      // Not (yet) seen: EAGAIN makes the kernel send the interrupt again if the request is still pending.
      this.send([errorReply(unique, E.EAGAIN)]);
      return;
    }
    // Another reader may hold the target request right now; look again shortly.
    setTimeout(() => this.interrupt(unique, target, true), 10).unref();
  }

  /**
   * Starts the op behind a request. An op that completes synchronously (most metadata ops of an
   * in-memory tree) is answered at once, with no promise job in between: on the 2-core VM the
   * promise machinery of an async call was a visible share of a small request's cost.
   */
  private serve(req: Request, settled?: () => void): void {
    const ctx = new Ctx(req);
    this.inflight.set(req.unique, ctx);
    let result: Reply | Errno | Promise<Reply>;
    try {
      result = this.call(req, ctx);
    } catch (err) {
      this.fail(req, ctx, err);
      settled?.();
      return;
    }
    if (result instanceof Errno) {
      this.fail(req, ctx, result);
      settled?.();
      return;
    }
    // `settled` runs when the op is done with the request, not when it is answered: an op
    // answered ETIMEDOUT may still be using it.
    if (result instanceof Promise)
      result.then(
        (reply) => {
          settled?.();
          this.reply(req, ctx, reply);
        },
        (err: unknown) => {
          settled?.();
          this.fail(req, ctx, err);
        },
      );
    else {
      this.reply(req, ctx, result);
      settled?.();
    }
  }

  private reply(req: Request, ctx: Ctx, reply: Reply): void {
    // Answered already (ETIMEDOUT): the late answer is dropped, and what it opened with it.
    if (ctx.answered) {
      reply.file?.release();
      reply.undelivered?.();
      return;
    }
    ctx.answered = true;
    this.stats.timed(req.opcode, performance.now() - ctx.t0);
    this.inflight.delete(req.unique);
    if (reply.file) {
      this.sendSlice(req.unique, reply.file);
      return;
    }
    const parts = reply.parts;
    let delivered: boolean;
    if (parts.length <= 1) delivered = this.sendReply(req.unique, 0, parts[0]);
    else if (this.ring) delivered = this.sendReply(req.unique, 0, Buffer.concat(parts));
    else {
      let len: number = Size.OUT_HEADER;
      for (const p of parts) len += p.length;
      delivered = this.send([outHeader(len, 0, req.unique), ...parts]);
    }
    if (delivered && reply.refs) for (const ino of reply.refs) if (ino !== FUSE_ROOT_ID) this.refs.set(ino, (this.refs.get(ino) ?? 0) + 1);
    if (!delivered && reply.refs) for (const ino of reply.refs) if (!this.refs.has(ino)) this.forget(ino, 0);
    if (!delivered) reply.undelivered?.();
  }

  private fail(req: Request, ctx: Ctx, err: unknown): void {
    if (ctx.answered) return;
    ctx.answered = true;
    this.inflight.delete(req.unique);
    this.sendReply(req.unique, -this.errnoOf(err, req, ctx));
  }

  private errnoOf(err: unknown, req: Request, ctx: Ctx): number {
    if (err instanceof Errno) return err.errno;
    const mapped = this.opts.errno?.(err);
    if (mapped !== undefined) return mapped;
    if ((err as Error)?.name === "AbortError" || (ctx.interrupted && ctx.signal.aborted)) return E.EINTR;
    this.log(`${req.args.op} (inode ${req.nodeid}) failed: ${(err as Error)?.stack ?? String(err)}`);
    return E.EIO;
  }

  /** Runs the op behind a request and builds its reply (synchronously if the op did not return a promise). */
  private call(req: Request, ctx: Ctx): Reply | Errno | Promise<Reply> {
    const fs = this.fs;
    const ino = req.nodeid;
    const a = req.args;
    switch (a.op) {
      case "LOOKUP":
        return then(fs.lookup ? fs.lookup(ctx, ino, a.name) : missing(), entry);
      case "GETATTR":
        return then(fs.getattr ? fs.getattr(ctx, ino, a.fh) : missing(), attr);
      case "SETATTR":
        return then(fs.setattr ? fs.setattr(ctx, ino, a.set) : missing(), attr);
      case "READLINK":
        return then(fs.readlink ? fs.readlink(ctx, ino) : missing(), (t) => ({ parts: [Buffer.from(t)] }));
      case "SYMLINK":
        return then(fs.symlink ? fs.symlink(ctx, ino, a.name, a.target) : missing(), entry);
      case "MKNOD":
        return then(fs.mknod ? fs.mknod(ctx, ino, a.name, a.mode, a.rdev) : missing(), entry);
      case "MKDIR":
        return then(fs.mkdir ? fs.mkdir(ctx, ino, a.name, a.mode) : missing(), entry);
      case "LINK":
        return then(fs.link ? fs.link(ctx, a.oldIno, ino, a.newName) : missing(), entry);
      case "UNLINK":
        return then(fs.unlink ? fs.unlink(ctx, ino, a.name) : missing(), empty);
      case "RMDIR":
        return then(fs.rmdir ? fs.rmdir(ctx, ino, a.name) : missing(), empty);
      case "RENAME":
        return then(fs.rename ? fs.rename(ctx, ino, a.name, a.newParent, a.newName, a.flags) : missing(), empty);
      case "OPEN":
        return then(fs.open ? fs.open(ctx, ino, a.flags) : missing(), (o) => ({ parts: [encodeOpenOut(o)], undelivered: this.abandoned(ino, o) }));
      case "OPENDIR":
        return then(fs.opendir ? fs.opendir(ctx, ino, a.flags) : { fh: 0 }, (o) => ({ parts: [encodeOpenOut(o)] }));
      case "READ": {
        if (a.size > this.stats.maxRead) this.stats.maxRead = a.size;
        return then(fs.read ? fs.read(ctx, ino, a.fh, a.offset, a.size) : missing(), (data) => {
          if (!("release" in data)) return { parts: [data.length > a.size ? data.subarray(0, a.size) : data] };
          if (data.length <= a.size) return { parts: [], file: data };
          data.release();
          throw new Error(`read answered ${data.length} bytes, ${a.size} asked`);
        });
      }
      case "WRITE": {
        if (a.data.length > this.stats.maxWrite) this.stats.maxWrite = a.data.length;
        return then(fs.write ? fs.write(ctx, ino, a.fh, a.offset, a.data, a.writeFlags) : missing(), (n) => ({ parts: [encodeCount(n)] }));
      }
      case "STATFS":
        return then(fs.statfs ? fs.statfs(ctx, ino) : { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 }, (st) => ({ parts: [encodeStatfs(st)] }));
      case "RELEASE":
        return then(fs.release?.(ctx, ino, a.fh, a.flags), empty);
      case "RELEASEDIR":
        return then(fs.releasedir?.(ctx, ino, a.fh), empty);
      case "FLUSH":
        return then(fs.flush ? fs.flush(ctx, ino, a.fh, a.lockOwner) : missing(), empty);
      case "FSYNC":
        return then(fs.fsync ? fs.fsync(ctx, ino, a.fh, a.datasync) : missing(), empty);
      case "FSYNCDIR":
        return then(fs.fsyncdir ? fs.fsyncdir(ctx, ino, a.fh, a.datasync) : missing(), empty);
      case "SETXATTR":
        return then(fs.setxattr ? fs.setxattr(ctx, ino, a.name, a.value, a.flags) : missing(), empty);
      case "REMOVEXATTR":
        return then(fs.removexattr ? fs.removexattr(ctx, ino, a.name) : missing(), empty);
      case "GETXATTR":
        return then(fs.getxattr ? fs.getxattr(ctx, ino, a.name) : missing(), (v) => sized(v, a.size));
      case "LISTXATTR":
        return then(fs.listxattr ? fs.listxattr(ctx, ino) : missing(), (names) => sized(Buffer.from(names.map((n) => `${n}\0`).join("")), a.size));
      case "ACCESS":
        return then(fs.access ? fs.access(ctx, ino, a.mask) : missing(), empty);
      case "CREATE":
        return then(fs.create ? fs.create(ctx, ino, a.name, a.mode, a.flags) : missing(), (r) => ({ parts: [encodeCreateOut(r.entry, r.opened)], refs: [r.entry.ino], undelivered: this.abandoned(r.entry.ino, r.opened) }));
      case "READDIR":
      case "READDIRPLUS": {
        const plus = a.op === "READDIRPLUS";
        const max = Math.ceil(a.size / (plus ? Size.DIRENTPLUS + 8 : Size.DIRENT + 8)) + 1;
        return then(fs.readdir ? fs.readdir(ctx, ino, a.fh, a.offset, max, plus) : missing(), (entries) => {
          const { data, count } = encodeDirents(entries, a.size, plus);
          if (!plus) return { parts: [data] };
          const refs: number[] = [];
          // The kernel takes a reference for every packed entry but "." and ".." (and nodeid 0).
          for (let i = 0; i < count; i++) {
            const d = entries[i]!;
            if (d.entry && d.entry.ino !== 0 && d.name !== "." && d.name !== "..") refs.push(d.entry.ino);
          }
          // Entries the file system numbered (InodeMap.ino) that found no room in the reply never
          // reach the kernel: their numbers go again unless it holds them otherwise (else each
          // page left one or two registered for ever, and a bounded cache could not drop them).
          // Deferred as the kernel's forgets are, so a reply naming one that is still on its way
          // (this one, if a hard link packed it, or another op's) is counted first.
          for (let i = count; i < entries.length; i++) {
            const e = entries[i]!.entry;
            if (e && e.ino !== 0 && e.ino !== FUSE_ROOT_ID) this.deferForget(e.ino, 0);
          }
          return { parts: [data], refs };
        });
      }
      case "GETLK":
        return then(fs.getlk ? fs.getlk(ctx, ino, a.fh, a.owner, a.lock) : missing(), (l) => ({ parts: [encodeLkOut(l)] }));
      case "SETLK":
      case "SETLKW":
        return then(fs.setlk ? fs.setlk(ctx, ino, a.fh, a.owner, a.lock, { wait: a.op === "SETLKW", flock: a.flock }) : missing(), empty);
      case "FALLOCATE":
        return then(fs.fallocate ? fs.fallocate(ctx, ino, a.fh, a.offset, a.length, a.mode) : missing(), empty);
      case "LSEEK":
        return then(fs.lseek ? fs.lseek(ctx, ino, a.fh, a.offset, a.whence) : missing(), (off) => ({ parts: [encodeLseekOut(off)] }));
      case "COPY_FILE_RANGE":
        return then(fs.copyFileRange ? fs.copyFileRange(ctx, { ino, fh: a.fhIn, offset: a.offIn }, { ino: a.inoOut, fh: a.fhOut, offset: a.offOut }, a.len) : missing(), (n) => ({ parts: [encodeCount(n)] }));
      default:
        throw new Errno(E.ENOSYS);
    }
  }

  /** What an OPEN or CREATE reply the kernel refused leaves to undo: the file system's handle (and its backing id). */
  private abandoned(ino: number, o: Opened): (() => void) | undefined {
    const fs = this.fs;
    if (!fs.abandon) return undefined;
    return () => {
      try {
        fs.abandon!(ino, o);
      } catch (err) {
        this.log(`abandoning handle ${o.fh} failed: ${(err as Error).message}`);
      }
    };
  }

  /**
   * Writes one reply. False when the kernel no longer wants it: the request was interrupted and
   * dropped (ENOENT) or the connection is gone.
   */
  private send(parts: Buffer[]): boolean {
    try {
      if (parts.length === 1) writeSync(this.fd, parts[0]!);
      else writevSync(this.fd, parts);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENODEV" && code !== "EBADF" && code !== "ECONNABORTED") this.log(`reply failed: ${(err as Error).message}`);
      return false;
    }
  }

  /**
   * Writes a reply of one part or none (`error`: 0 or minus an errno) through the addon's
   * `reply` where it is built: one native writev, no header Buffer, none of fs.writeSync's
   * per-call JavaScript (~1.5 µs of a GETATTR's ~10). False as for send().
   */
  private sendReply(unique: number, error: number, payload?: Buffer): boolean {
    const native = this.nativeReply;
    if (!native) return this.send(payload ? [outHeader(Size.OUT_HEADER + payload.length, error, unique), payload] : [outHeader(Size.OUT_HEADER, error, unique)]);
    const n = native(this.fd, unique, error, payload);
    if (n >= 0) return true;
    const errno = -n;
    if (errno !== E.ENOENT && errno !== E.ENODEV && errno !== E.EBADF && errno !== E.ECONNABORTED) this.log(`reply failed: errno ${errno}`);
    return false;
  }

  /**
   * Answers a READ with a slice of a file: spliced from the file to /dev/fuse on the thread pool
   * (a cold page cache read blocks), one copy per byte and none through the process; copied
   * (`slice.copy`, then one writev) where splice is unusable: not built, SILO_FUSE_SPLICE=off or copy,
   * the io_uring ring (it answers from its own buffers), or a splice that sent nothing (a pipe
   * that cannot hold the reply, a file that reads short: never a reply of the wrong length).
   */
  private sendSlice(unique: number, slice: FileSlice): void {
    const splice = this.spliceReply;
    if (!splice || this.ring || slice.length === 0) {
      this.copySlice(unique, slice);
      return;
    }
    splice(this.fd, unique, slice.fd, slice.offset, slice.length).then(
      (n) => {
        slice.release();
        if (n >= 0) this.stats.splicedReplies++;
        else if (-n !== E.ENOENT && -n !== E.ENODEV && -n !== E.EBADF && -n !== E.ECONNABORTED) this.log(`reply failed: errno ${-n}`);
      },
      () => this.copySlice(unique, slice),
    );
  }

  private copySlice(unique: number, slice: FileSlice): void {
    this.stats.copiedSlices++;
    slice.copy().then(
      (data) => {
        this.sendReply(unique, 0, data);
        slice.release();
      },
      (err: unknown) => {
        slice.release();
        this.log(`READ of a file's bytes failed: ${(err as Error)?.message ?? String(err)}`);
        this.sendReply(unique, -E.EIO);
      },
    );
  }

  /**
   * Notifications go through the thread pool, never synchronously: the kernel may hold them
   * until a request we are still serving finishes (it locks the directory or inode first).
   */
  private notify(msg: Buffer): Promise<void> {
    if (!this.info || this.over) return Promise.resolve();
    return new Promise((res) =>
      write(this.fd, msg, 0, msg.length, null, (err) => {
        // ENOENT: the kernel does not cache what we invalidate; nothing to do.
        if (err && err.code !== "ENOENT" && err.code !== "ENODEV" && err.code !== "EBADF") this.log(`notification failed: ${err.message}`);
        res();
      }),
    );
  }

  invalEntry(parent: number, name: string): Promise<void> {
    return this.notify(encodeInvalEntry(parent, name));
  }

  invalInode(ino: number, off = 0, len = 0): Promise<void> {
    return this.notify(encodeInvalInode(ino, off, len));
  }

  /** Whether the kernel holds a reference to `ino` (worth invalidating). */
  isKnown(ino: number): boolean {
    return ino === FUSE_ROOT_ID || this.refs.has(ino);
  }
}

/** Entries per kernel queue (one queue per possible CPU): requests served at once per CPU. */
const RING_DEPTH = 8;

/** Whether the fuse module lets connections use io_uring (a root-writable module parameter). */
function uringEnabled(): boolean {
  try {
    return readFileSync("/sys/module/fuse/parameters/enable_uring", "utf8").trim() === "Y";
  } catch {
    return false;
  }
}

function spliceReplyWriter(): ((fuseFd: number, unique: number, fileFd: number, offset: number, len: number) => Promise<number>) | undefined {
  const addon = fuseFdAddonIfBuilt();
  // "copy": file slices are copied (tests of that path); "off" (the volume daemon): none are made.
  const env = process.env.SILO_FUSE_SPLICE;
  if (env === "off" || env === "copy" || typeof addon?.spliceReply !== "function") return undefined;
  return addon.spliceReply.bind(addon);
}

function nativeReplyWriter(): ((fd: number, unique: number, error: number, payload?: Buffer) => number) | undefined {
  const addon = fuseFdAddonIfBuilt();
  return typeof addon?.reply === "function" ? addon.reply.bind(addon) : undefined;
}

/**
 * Applies `f` to an op's result: at once if it is a value, when it settles if it is a promise.
 * An Errno the op returned (instead of throwing: filesystem.ts) is its answer.
 */
function then<T>(v: T | Errno | Promise<T | Errno>, f: (v: T) => Reply): Reply | Errno | Promise<Reply> {
  if (v instanceof Promise) return v.then((x) => (x instanceof Errno ? Promise.reject(x) : f(x)));
  return v instanceof Errno ? v : f(v);
}

/** getxattr/listxattr: a size probe (size 0) gets the length, a short buffer ERANGE. */
function sized(value: Buffer, size: number): Reply {
  if (size === 0) return { parts: [encodeCount(value.length)] };
  if (value.length > size) throw new Errno(E.ERANGE);
  return { parts: [value] };
}

// The common reply builders, at module level: closures made per request cost an allocation each.
function missing(): never {
  throw new Errno(E.ENOSYS);
}
const entry = (e: Entry): Reply => ({ parts: [encodeEntry(e)], refs: [e.ino] });
const attr = (r: AttrReply): Reply => ({ parts: [encodeAttrOut(r.attr, r.ttlMs)] });
const empty = (): Reply => EMPTY;
