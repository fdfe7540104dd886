/**
 * Decoding of FUSE requests and encoding of replies: pure functions over buffers, little-endian
 * as on every architecture silo runs on. Layouts are those of linux/fuse.h (see abi.ts).
 */
import { F_RDLCK, F_UNLCK, F_WRLCK, Fattr, FUSE_GETATTR_FH, FUSE_LK_FLOCK, InitFlag, NotifyCode, Opcode, Size } from "./abi.js";
import type { Attr, DirEntry, Entry, FileLock, Opened, SetattrRequest, StatfsReply } from "./types.js";
import { Fopen } from "./abi.js";

const U32 = 2 ** 32;

/** u64 as a JS number (exact below 2^53: inode numbers, offsets, sizes and uniques are). */
const u64 = (b: Buffer, o: number) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * U32;
const putU64 = (b: Buffer, o: number, v: number) => {
  b.writeUInt32LE(v % U32 >>> 0, o);
  b.writeUInt32LE(Math.floor(v / U32) >>> 0, o + 4);
};
/** i64 from a JS number (lseek/inval offsets may be -1, times before 1970 negative), two's complement without a BigInt. */
const putI64 = (b: Buffer, o: number, v: number) => {
  const hi = Math.floor(v / U32);
  b.writeUInt32LE(v - hi * U32, o);
  b.writeInt32LE(hi, o + 4);
};

/** A NUL-terminated name at `o`; returns it and where the next field starts. */
function cstr(b: Buffer, o: number, end: number): [string, number] {
  let z = b.indexOf(0, o);
  if (z < 0 || z > end) z = end;
  return [b.toString("utf8", o, z), z + 1];
}

export interface InHeader {
  len: number;
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export function decodeHeader(b: Buffer): InHeader {
  return {
    len: b.readUInt32LE(0),
    opcode: b.readUInt32LE(4),
    unique: u64(b, 8),
    nodeid: u64(b, 16),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
  };
}

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  /** All 64 flag bits (flags | flags2 << 32). */
  flags: number;
}

/** Arguments of each request the session handles, by opcode. */
export type RequestArgs =
  | { op: "LOOKUP" | "UNLINK" | "RMDIR" | "REMOVEXATTR"; name: string }
  | { op: "FORGET"; nlookup: number }
  | { op: "BATCH_FORGET"; forgets: Array<{ ino: number; nlookup: number }> }
  | { op: "GETATTR"; fh?: number }
  | { op: "SETATTR"; set: SetattrRequest }
  | { op: "READLINK" | "STATFS" | "DESTROY" }
  | { op: "SYMLINK"; name: string; target: string }
  | { op: "MKNOD"; name: string; mode: number; rdev: number; umask: number }
  | { op: "MKDIR"; name: string; mode: number; umask: number }
  | { op: "RENAME"; name: string; newParent: number; newName: string; flags: number }
  | { op: "LINK"; oldIno: number; newName: string }
  | { op: "OPEN" | "OPENDIR"; flags: number }
  | { op: "READ" | "READDIR" | "READDIRPLUS"; fh: number; offset: number; size: number; flags: number }
  | { op: "WRITE"; fh: number; offset: number; data: Buffer; writeFlags: number; flags: number }
  | { op: "RELEASE" | "RELEASEDIR"; fh: number; flags: number; releaseFlags: number }
  | { op: "FLUSH"; fh: number; lockOwner: bigint }
  | { op: "FSYNC" | "FSYNCDIR"; fh: number; datasync: boolean }
  | { op: "SETXATTR"; name: string; value: Buffer; flags: number }
  | { op: "GETXATTR"; name: string; size: number }
  | { op: "LISTXATTR"; size: number }
  | { op: "INIT"; init: InitIn }
  | { op: "ACCESS"; mask: number }
  | { op: "CREATE"; name: string; flags: number; mode: number; umask: number }
  | { op: "INTERRUPT"; target: number }
  | { op: "GETLK" | "SETLK" | "SETLKW"; fh: number; owner: bigint; lock: FileLock; flock: boolean }
  | { op: "FALLOCATE"; fh: number; offset: number; length: number; mode: number }
  | { op: "LSEEK"; fh: number; offset: number; whence: number }
  | { op: "COPY_FILE_RANGE"; fhIn: number; offIn: number; inoOut: number; fhOut: number; offOut: number; len: number; flags: number }
  | { op: "UNSUPPORTED"; opcode: number };

export type Request = InHeader & { args: RequestArgs };

/** A request whose arguments are shorter than its opcode needs. */
export class MalformedRequest extends Error {}

/**
 * Decodes one request as read from /dev/fuse (`n` bytes of `b`). A WRITE's data is a view into
 * `b`: the caller must not reuse the buffer while the write is being served.
 */
export function decodeRequest(b: Buffer, n: number): Request {
  if (n < Size.IN_HEADER) throw new MalformedRequest(`request of ${n} bytes is shorter than its header`);
  const h = decodeHeader(b);
  const extLen = b.readUInt16LE(36) * 8;
  const end = Math.min(n, h.len) - extLen;
  const o = Size.IN_HEADER;
  const need = (bytes: number) => {
    if (end - o < bytes) throw new MalformedRequest(`opcode ${h.opcode}: ${end - o} argument bytes, needs ${bytes}`);
  };
  const name = (at: number) => cstr(b, at, end)[0];
  let args: RequestArgs;
  switch (h.opcode) {
    case Opcode.LOOKUP:
      args = { op: "LOOKUP", name: name(o) };
      break;
    case Opcode.UNLINK:
      args = { op: "UNLINK", name: name(o) };
      break;
    case Opcode.RMDIR:
      args = { op: "RMDIR", name: name(o) };
      break;
    case Opcode.REMOVEXATTR:
      args = { op: "REMOVEXATTR", name: name(o) };
      break;
    case Opcode.FORGET:
      need(8);
      args = { op: "FORGET", nlookup: u64(b, o) };
      break;
    case Opcode.BATCH_FORGET: {
      need(8);
      const count = b.readUInt32LE(o);
      need(8 + count * 16);
      const forgets = [];
      for (let i = 0; i < count; i++) forgets.push({ ino: u64(b, o + 8 + i * 16), nlookup: u64(b, o + 16 + i * 16) });
      args = { op: "BATCH_FORGET", forgets };
      break;
    }
    case Opcode.GETATTR: {
      need(16);
      const flags = b.readUInt32LE(o);
      args = { op: "GETATTR", fh: flags & FUSE_GETATTR_FH ? u64(b, o + 8) : undefined };
      break;
    }
    case Opcode.SETATTR:
      need(88);
      args = { op: "SETATTR", set: decodeSetattr(b, o) };
      break;
    case Opcode.READLINK:
      args = { op: "READLINK" };
      break;
    case Opcode.STATFS:
      args = { op: "STATFS" };
      break;
    case Opcode.DESTROY:
      args = { op: "DESTROY" };
      break;
    case Opcode.SYMLINK: {
      const [linkName, next] = cstr(b, o, end);
      args = { op: "SYMLINK", name: linkName, target: cstr(b, next, end)[0] };
      break;
    }
    case Opcode.MKNOD:
      need(16);
      args = { op: "MKNOD", mode: b.readUInt32LE(o), rdev: b.readUInt32LE(o + 4), umask: b.readUInt32LE(o + 8), name: name(o + 16) };
      break;
    case Opcode.MKDIR:
      need(8);
      args = { op: "MKDIR", mode: b.readUInt32LE(o), umask: b.readUInt32LE(o + 4), name: name(o + 8) };
      break;
    case Opcode.RENAME:
    case Opcode.RENAME2: {
      const fixed = h.opcode === Opcode.RENAME ? 8 : 16;
      need(fixed);
      const [oldName, next] = cstr(b, o + fixed, end);
      args = { op: "RENAME", newParent: u64(b, o), flags: h.opcode === Opcode.RENAME2 ? b.readUInt32LE(o + 8) : 0, name: oldName, newName: cstr(b, next, end)[0] };
      break;
    }
    case Opcode.LINK:
      need(8);
      args = { op: "LINK", oldIno: u64(b, o), newName: name(o + 8) };
      break;
    case Opcode.OPEN:
    case Opcode.OPENDIR:
      need(8);
      args = { op: h.opcode === Opcode.OPEN ? "OPEN" : "OPENDIR", flags: b.readUInt32LE(o) };
      break;
    case Opcode.READ:
    case Opcode.READDIR:
    case Opcode.READDIRPLUS:
      need(24);
      args = {
        op: h.opcode === Opcode.READ ? "READ" : h.opcode === Opcode.READDIR ? "READDIR" : "READDIRPLUS",
        fh: u64(b, o),
        offset: u64(b, o + 8),
        size: b.readUInt32LE(o + 16),
        flags: end - o >= 40 ? b.readUInt32LE(o + 32) : 0,
      };
      break;
    case Opcode.WRITE: {
      need(40);
      const size = b.readUInt32LE(o + 16);
      need(40 + size);
      args = { op: "WRITE", fh: u64(b, o), offset: u64(b, o + 8), writeFlags: b.readUInt32LE(o + 20), flags: b.readUInt32LE(o + 32), data: b.subarray(o + 40, o + 40 + size) };
      break;
    }
    case Opcode.RELEASE:
    case Opcode.RELEASEDIR:
      need(16);
      args = { op: h.opcode === Opcode.RELEASE ? "RELEASE" : "RELEASEDIR", fh: u64(b, o), flags: b.readUInt32LE(o + 8), releaseFlags: b.readUInt32LE(o + 12) };
      break;
    case Opcode.FLUSH:
      need(24);
      args = { op: "FLUSH", fh: u64(b, o), lockOwner: b.readBigUInt64LE(o + 16) };
      break;
    case Opcode.FSYNC:
    case Opcode.FSYNCDIR:
      need(16);
      args = { op: h.opcode === Opcode.FSYNC ? "FSYNC" : "FSYNCDIR", fh: u64(b, o), datasync: (b.readUInt32LE(o + 8) & 1) !== 0 };
      break;
    case Opcode.SETXATTR: {
      // The 8-byte fuse_setxattr_in: FUSE_SETXATTR_EXT (16 bytes) is never negotiated.
      need(8);
      const size = b.readUInt32LE(o);
      const [xname, next] = cstr(b, o + 8, end);
      if (next + size > end) throw new MalformedRequest("setxattr value runs past the request");
      args = { op: "SETXATTR", name: xname, flags: b.readUInt32LE(o + 4), value: Buffer.from(b.subarray(next, next + size)) };
      break;
    }
    case Opcode.GETXATTR:
      need(8);
      args = { op: "GETXATTR", size: b.readUInt32LE(o), name: name(o + 8) };
      break;
    case Opcode.LISTXATTR:
      need(8);
      args = { op: "LISTXATTR", size: b.readUInt32LE(o) };
      break;
    case Opcode.INIT: {
      need(16);
      const flags = b.readUInt32LE(o + 12);
      const flags2 = flags & InitFlag.INIT_EXT && end - o >= 20 ? b.readUInt32LE(o + 16) : 0;
      args = { op: "INIT", init: { major: b.readUInt32LE(o), minor: b.readUInt32LE(o + 4), maxReadahead: b.readUInt32LE(o + 8), flags: flags + flags2 * U32 } };
      break;
    }
    case Opcode.ACCESS:
      need(8);
      args = { op: "ACCESS", mask: b.readUInt32LE(o) };
      break;
    case Opcode.CREATE:
      need(16);
      args = { op: "CREATE", flags: b.readUInt32LE(o), mode: b.readUInt32LE(o + 4), umask: b.readUInt32LE(o + 8), name: name(o + 16) };
      break;
    case Opcode.INTERRUPT:
      need(8);
      args = { op: "INTERRUPT", target: u64(b, o) };
      break;
    case Opcode.GETLK:
    case Opcode.SETLK:
    case Opcode.SETLKW: {
      need(48);
      const op = h.opcode === Opcode.GETLK ? "GETLK" : h.opcode === Opcode.SETLK ? "SETLK" : "SETLKW";
      args = { op, fh: u64(b, o), owner: b.readBigUInt64LE(o + 8), lock: decodeFileLock(b, o + 16), flock: (b.readUInt32LE(o + 40) & FUSE_LK_FLOCK) !== 0 };
      break;
    }
    case Opcode.FALLOCATE:
      need(32);
      args = { op: "FALLOCATE", fh: u64(b, o), offset: u64(b, o + 8), length: u64(b, o + 16), mode: b.readUInt32LE(o + 24) };
      break;
    case Opcode.LSEEK:
      need(24);
      args = { op: "LSEEK", fh: u64(b, o), offset: u64(b, o + 8), whence: b.readUInt32LE(o + 16) };
      break;
    case Opcode.COPY_FILE_RANGE:
      need(56);
      args = {
        op: "COPY_FILE_RANGE",
        fhIn: u64(b, o),
        offIn: u64(b, o + 8),
        inoOut: u64(b, o + 16),
        fhOut: u64(b, o + 24),
        offOut: u64(b, o + 32),
        len: u64(b, o + 40),
        flags: u64(b, o + 48),
      };
      break;
    default:
      args = { op: "UNSUPPORTED", opcode: h.opcode };
  }
  // A literal, not a spread of h: spreads cost microseconds per request in V8 (measured on attributes).
  return { len: h.len, opcode: h.opcode, unique: h.unique, nodeid: h.nodeid, uid: h.uid, gid: h.gid, pid: h.pid, args };
}

const LOCK_TYPES: Record<number, FileLock["type"]> = { [F_RDLCK]: "read", [F_WRLCK]: "write", [F_UNLCK]: "unlock" };

function decodeFileLock(b: Buffer, o: number): FileLock {
  const type = LOCK_TYPES[b.readUInt32LE(o + 16)];
  if (!type) throw new MalformedRequest(`lock type ${b.readUInt32LE(o + 16)}`);
  return { start: b.readBigUInt64LE(o), end: b.readBigUInt64LE(o + 8), type, pid: b.readUInt32LE(o + 20) };
}

const timeMs = (sec: number, nsec: number) => sec * 1000 + Math.floor(nsec / 1e6);
/** A fuse time (u64 seconds, as the kernel's signed time64_t, and u32 ns) in ns. */
const timeNs = (b: Buffer, secAt: number, nsecAt: number) => b.readBigInt64LE(secAt) * 1_000_000_000n + BigInt(b.readUInt32LE(nsecAt));

function decodeSetattr(b: Buffer, o: number): SetattrRequest {
  const valid = b.readUInt32LE(o);
  const set: SetattrRequest = {};
  if (valid & Fattr.MODE) set.mode = b.readUInt32LE(o + 68);
  if (valid & Fattr.UID) set.uid = b.readUInt32LE(o + 76);
  if (valid & Fattr.GID) set.gid = b.readUInt32LE(o + 80);
  if (valid & Fattr.SIZE) set.size = u64(b, o + 16);
  if (valid & Fattr.ATIME) set.atime = valid & Fattr.ATIME_NOW ? "now" : timeMs(u64(b, o + 32), b.readUInt32LE(o + 56));
  if (valid & Fattr.MTIME) set.mtime = valid & Fattr.MTIME_NOW ? "now" : timeMs(u64(b, o + 40), b.readUInt32LE(o + 60));
  if (valid & Fattr.ATIME && !(valid & Fattr.ATIME_NOW)) set.atimeNs = timeNs(b, o + 32, o + 56);
  if (valid & Fattr.MTIME && !(valid & Fattr.MTIME_NOW)) set.mtimeNs = timeNs(b, o + 40, o + 60);
  if (valid & Fattr.CTIME) set.ctime = timeMs(u64(b, o + 48), b.readUInt32LE(o + 64));
  if (valid & Fattr.FH) set.fh = u64(b, o + 8);
  if (valid & Fattr.KILL_SUIDGID) set.killSuidgid = true;
  return set;
}

// ---- replies ----

/**
 * A zero-filled buffer for a reply. Small ones come from Node's shared pool: Buffer.alloc gives
 * each its own ArrayBuffer, ~1.5 µs per reply on the 2-core VM against ~0.2 µs.
 */
const zeroed = (n: number): Buffer => Buffer.allocUnsafe(n).fill(0);

/** The 16-byte header every reply and notification starts with. */
export function outHeader(len: number, error: number, unique: number): Buffer {
  const b = Buffer.allocUnsafe(Size.OUT_HEADER);
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  putU64(b, 8, unique);
  return b;
}

/** A whole error reply (errno positive; sent negated). */
export function errorReply(unique: number, errno: number): Buffer {
  return outHeader(Size.OUT_HEADER, -Math.abs(errno), unique);
}

const secs = (ms: number) => Math.floor(ms / 1000);
const nsecs = (ms: number) => Math.floor((ms - Math.floor(ms / 1000) * 1000) * 1e6);

function putTime(b: Buffer, secAt: number, nsecAt: number, ms: number): void {
  const t = Math.max(0, ms);
  putU64(b, secAt, secs(t));
  b.writeUInt32LE(Math.min(999_999_999, nsecs(t)), nsecAt);
}

const NS_PER_S = 1_000_000_000n;

/**
 * A time in ns as seconds (signed: times before 1970 are negative) and ns within the second.
 * One BigInt operation (readdirplus writes three times per entry): Number(ns) is off by at most
 * a microsecond, far from the half second that would round to the wrong second.
 */
function putTimeNs(b: Buffer, secAt: number, nsecAt: number, ns: bigint): void {
  let rem = Number(ns % NS_PER_S);
  if (rem < 0) rem += 1e9;
  putI64(b, secAt, Math.round((Number(ns) - rem) / 1e9));
  b.writeUInt32LE(rem, nsecAt);
}

export function writeAttr(b: Buffer, o: number, a: Attr): void {
  putU64(b, o, a.ino);
  putU64(b, o + 8, a.size);
  putU64(b, o + 16, a.blocks ?? Math.ceil(a.size / 512));
  if (a.atimeNs !== undefined) putTimeNs(b, o + 24, o + 48, a.atimeNs);
  else putTime(b, o + 24, o + 48, a.atimeMs ?? 0);
  if (a.mtimeNs !== undefined) putTimeNs(b, o + 32, o + 52, a.mtimeNs);
  else putTime(b, o + 32, o + 52, a.mtimeMs ?? 0);
  if (a.ctimeNs !== undefined) putTimeNs(b, o + 40, o + 56, a.ctimeNs);
  else putTime(b, o + 40, o + 56, a.ctimeMs ?? 0);
  b.writeUInt32LE(a.mode >>> 0, o + 60);
  b.writeUInt32LE(a.nlink >>> 0, o + 64);
  b.writeUInt32LE(a.uid >>> 0, o + 68);
  b.writeUInt32LE(a.gid >>> 0, o + 72);
  b.writeUInt32LE((a.rdev ?? 0) >>> 0, o + 76);
  b.writeUInt32LE((a.blksize ?? 4096) >>> 0, o + 80);
  b.writeUInt32LE(0, o + 84);
}

function putTtl(b: Buffer, secAt: number, nsecAt: number, ms: number): void {
  putTime(b, secAt, nsecAt, ms);
}

export function writeEntry(b: Buffer, o: number, e: Entry): void {
  putU64(b, o, e.ino);
  putU64(b, o + 8, e.generation ?? 0);
  putTtl(b, o + 16, o + 32, e.entryTtlMs);
  putTtl(b, o + 24, o + 36, e.attrTtlMs);
  writeAttr(b, o + 40, e.attr);
}

export function encodeEntry(e: Entry): Buffer {
  const b = zeroed(Size.ENTRY_OUT);
  writeEntry(b, 0, e);
  return b;
}

export function encodeAttrOut(a: Attr, ttlMs: number): Buffer {
  const b = zeroed(Size.ATTR_OUT);
  putTtl(b, 0, 8, ttlMs);
  writeAttr(b, 16, a);
  return b;
}

export function encodeOpenOut(o: Opened): Buffer {
  const b = zeroed(Size.OPEN_OUT);
  putU64(b, 0, o.fh);
  let flags = 0;
  if (o.keepCache) flags |= Fopen.KEEP_CACHE;
  if (o.directIo) flags |= Fopen.DIRECT_IO;
  if (o.cacheDir) flags |= Fopen.CACHE_DIR;
  if (o.nonSeekable) flags |= Fopen.NONSEEKABLE;
  if (o.backingId !== undefined) {
    flags |= Fopen.PASSTHROUGH;
    b.writeInt32LE(o.backingId, 12);
  }
  b.writeUInt32LE(flags, 8);
  return b;
}

export function encodeCreateOut(e: Entry, o: Opened): Buffer {
  return Buffer.concat([encodeEntry(e), encodeOpenOut(o)]);
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
  /** With FUSE_PASSTHROUGH (0 otherwise). */
  maxStackDepth?: number;
}

export function encodeInitOut(i: InitOut): Buffer {
  const b = zeroed(Size.INIT_OUT);
  b.writeUInt32LE(i.major, 0);
  b.writeUInt32LE(i.minor, 4);
  b.writeUInt32LE(i.maxReadahead, 8);
  b.writeUInt32LE(i.flags % U32 >>> 0, 12);
  b.writeUInt16LE(i.maxBackground, 16);
  b.writeUInt16LE(i.congestionThreshold, 18);
  b.writeUInt32LE(i.maxWrite, 20);
  b.writeUInt32LE(i.timeGran, 24);
  b.writeUInt16LE(i.maxPages, 28);
  b.writeUInt32LE(Math.floor(i.flags / U32) >>> 0, 32);
  b.writeUInt32LE(i.maxStackDepth ?? 0, 36);
  return b;
}

export function decodeInitOut(b: Buffer): InitOut {
  return {
    major: b.readUInt32LE(0),
    minor: b.readUInt32LE(4),
    maxReadahead: b.readUInt32LE(8),
    flags: b.readUInt32LE(12) + b.readUInt32LE(32) * U32,
    maxBackground: b.readUInt16LE(16),
    congestionThreshold: b.readUInt16LE(18),
    maxWrite: b.readUInt32LE(20),
    timeGran: b.readUInt32LE(24),
    maxPages: b.readUInt16LE(28),
    maxStackDepth: b.readUInt32LE(36),
  };
}

export function encodeStatfs(s: StatfsReply): Buffer {
  const b = zeroed(Size.STATFS_OUT);
  putU64(b, 0, s.blocks);
  putU64(b, 8, s.bfree);
  putU64(b, 16, s.bavail);
  putU64(b, 24, s.files);
  putU64(b, 32, s.ffree);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namelen, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

/** fuse_write_out / fuse_getxattr_out: a u32 count and padding. */
export function encodeCount(n: number): Buffer {
  const b = zeroed(8);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** fuse_lk_out: the lock that would conflict (GETLK), or type F_UNLCK when none would. */
export function encodeLkOut(lock: FileLock | undefined): Buffer {
  const b = zeroed(Size.LK_OUT);
  if (!lock) {
    b.writeUInt32LE(F_UNLCK, 16);
    return b;
  }
  b.writeBigUInt64LE(lock.start, 0);
  b.writeBigUInt64LE(lock.end, 8);
  b.writeUInt32LE(lock.type === "read" ? F_RDLCK : lock.type === "write" ? F_WRLCK : F_UNLCK, 16);
  b.writeUInt32LE(lock.pid >>> 0, 20);
  return b;
}

export function encodeLseekOut(offset: number): Buffer {
  const b = zeroed(Size.LSEEK_OUT);
  putU64(b, 0, offset);
  return b;
}

const align8 = (n: number) => (n + 7) & ~7;

/**
 * Packs directory entries into at most `size` bytes (fuse_dirent, or fuse_direntplus with
 * `plus`). Returns the bytes and how many entries fit: the kernel asks again from the last
 * one's `nextOffset`. One buffer for the whole reply, no allocation per entry (a `find` over a
 * large tree packs every name once); zero-filled, so "." and ".." (no entry: nodeid 0, which
 * the kernel skips) and the padding after each name are zeros.
 */
export function encodeDirents(entries: DirEntry[], size: number, plus: boolean): { data: Buffer; count: number } {
  const head = plus ? Size.DIRENTPLUS : Size.DIRENT;
  let total = 0;
  let count = 0;
  for (const d of entries) {
    const len = align8(head + Buffer.byteLength(d.name));
    if (total + len > size) break;
    total += len;
    count++;
  }
  const b = zeroed(total);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const d = entries[i]!;
    if (plus) {
      if (d.entry) writeEntry(b, o, d.entry);
      o += Size.ENTRY_OUT;
    }
    const namelen = b.write(d.name, o + 24);
    putU64(b, o, d.ino);
    putU64(b, o + 8, d.nextOffset);
    b.writeUInt32LE(namelen, o + 16);
    b.writeUInt32LE(d.type, o + 20);
    o = align8(o + 24 + namelen);
  }
  return { data: b, count };
}

/** Decodes packed dirents (for tests and debugging). */
export function decodeDirents(b: Buffer, plus: boolean): Array<{ ino: number; nextOffset: number; type: number; name: string; entryIno?: number }> {
  const out = [];
  let o = 0;
  while (o < b.length) {
    const base = plus ? o + Size.ENTRY_OUT : o;
    const namelen = b.readUInt32LE(base + 16);
    out.push({
      ino: u64(b, base),
      nextOffset: u64(b, base + 8),
      type: b.readUInt32LE(base + 20),
      name: b.toString("utf8", base + 24, base + 24 + namelen),
      ...(plus ? { entryIno: u64(b, o) } : {}),
    });
    o = align8(base + 24 + namelen);
  }
  return out;
}

/** Notification: drop cached attributes (and pages from `off`, len 0 = to the end; off < 0: none) of `ino`. */
export function encodeInvalInode(ino: number, off: number, len: number): Buffer {
  const b = zeroed(Size.OUT_HEADER + Size.NOTIFY_INVAL_INODE);
  outHeader(b.length, NotifyCode.INVAL_INODE, 0).copy(b, 0);
  putU64(b, 16, ino);
  putI64(b, 24, off);
  putI64(b, 32, len);
  return b;
}

/** Notification: drop the cached name `name` under `parent` (the name is followed by a NUL). */
export function encodeInvalEntry(parent: number, name: string): Buffer {
  const n = Buffer.from(name);
  const b = zeroed(Size.OUT_HEADER + Size.NOTIFY_INVAL_ENTRY + n.length + 1);
  outHeader(b.length, NotifyCode.INVAL_ENTRY, 0).copy(b, 0);
  putU64(b, 16, parent);
  b.writeUInt32LE(n.length, 24);
  n.copy(b, 32);
  return b;
}
