import { describe, expect, it } from "vitest";
import { Fattr, InitFlag, NotifyCode, Opcode, Size } from "./abi.js";
import { decodeDirents, decodeInitOut, decodeRequest, encodeAttrOut, encodeDirents, encodeEntry, encodeInitOut, encodeInvalEntry, encodeInvalInode, encodeLkOut, encodeOpenOut, encodeStatfs, errorReply, MalformedRequest } from "./codec.js";
import { InodeMap, inoFieldSlots } from "./inode-map.js";
import type { Attr } from "./types.js";

/** A request as the kernel lays it out (linux/fuse.h), written field by field, independent of the codec. */
function request(opcode: number, body: Buffer, h: { unique?: bigint; nodeid?: bigint; uid?: number; gid?: number; pid?: number } = {}): Buffer {
  const b = Buffer.alloc(40 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(h.unique ?? 2n, 8);
  b.writeBigUInt64LE(h.nodeid ?? 1n, 16);
  b.writeUInt32LE(h.uid ?? 1000, 24);
  b.writeUInt32LE(h.gid ?? 100, 28);
  b.writeUInt32LE(h.pid ?? 4242, 32);
  body.copy(b, 40);
  return b;
}
const cstr = (...names: string[]) => Buffer.concat(names.map((n) => Buffer.from(`${n}\0`)));
const u32s = (...v: number[]) => {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeUInt32LE(x, i * 4));
  return b;
};
const u64s = (...v: bigint[]) => {
  const b = Buffer.alloc(v.length * 8);
  v.forEach((x, i) => b.writeBigUInt64LE(x, i * 8));
  return b;
};

const attr: Attr = { ino: 7, size: 5 * 2 ** 32 + 3, atimeMs: 1_000_500.25, mtimeMs: 2_000_999, ctimeMs: 3_000_000, mode: 0o100644, nlink: 2, uid: 1000, gid: 100 };

describe("request decoding", () => {
  it("reads the header's caller, unique and 64-bit node id, and the name of a LOOKUP", () => {
    const r = decodeRequest(request(Opcode.LOOKUP, cstr("hello.txt"), { unique: 2n ** 40n + 6n, nodeid: 2n ** 33n + 1n, uid: 1001, gid: 1002, pid: 77 }), 50);
    expect(r).toMatchObject({ opcode: Opcode.LOOKUP, unique: 2 ** 40 + 6, nodeid: 2 ** 33 + 1, uid: 1001, gid: 1002, pid: 77, args: { op: "LOOKUP", name: "hello.txt" } });
  });

  it("gives a WRITE's data as the bytes after fuse_write_in, and refuses a short one", () => {
    const data = Buffer.from("0123456789");
    const body = Buffer.concat([u64s(9n, 2n ** 32n + 4n), u32s(data.length, 1), u64s(0n), u32s(0o2, 0), data]);
    const r = decodeRequest(request(Opcode.WRITE, body), 40 + body.length);
    expect(r.args).toMatchObject({ op: "WRITE", fh: 9, offset: 2 ** 32 + 4, writeFlags: 1, flags: 0o2 });
    expect(r.args.op === "WRITE" && r.args.data.toString()).toBe("0123456789");
    const short = request(Opcode.WRITE, body.subarray(0, body.length - 3));
    expect(() => decodeRequest(short, short.length)).toThrow(MalformedRequest);
  });

  it("decodes a lock request (fuse_lk_in) with exact 64-bit owner and range, and the FLUSH lock owner", () => {
    const owner = 0xfedc_ba98_7654_3211n;
    const body = Buffer.concat([u64s(5n, owner, 100n, 2n ** 63n - 1n), u32s(1, 321, 1, 0)]);
    const r = decodeRequest(request(Opcode.SETLKW, body), 40 + body.length);
    expect(r.args).toEqual({ op: "SETLKW", fh: 5, owner, lock: { type: "write", start: 100n, end: 2n ** 63n - 1n, pid: 321 }, flock: true });
    const get = Buffer.concat([u64s(5n, 1n, 0n, 9n), u32s(0, 0, 0, 0)]);
    expect(decodeRequest(request(Opcode.GETLK, get), 88).args).toMatchObject({ op: "GETLK", lock: { type: "read" }, flock: false });
    const bad = Buffer.concat([u64s(5n, 1n, 0n, 9n), u32s(7, 0, 0, 0)]);
    expect(() => decodeRequest(request(Opcode.SETLK, bad), 88)).toThrow(MalformedRequest);
    const flush = Buffer.concat([u64s(3n), u32s(0, 0), u64s(owner)]);
    expect(decodeRequest(request(Opcode.FLUSH, flush), 64).args).toEqual({ op: "FLUSH", fh: 3, lockOwner: owner });
  });

  it("encodes fuse_lk_out: the conflicting lock with its pid, or F_UNLCK", () => {
    const out = encodeLkOut({ type: "write", start: 10n, end: 2n ** 63n - 1n, pid: 99 });
    expect([out.readBigUInt64LE(0), out.readBigUInt64LE(8), out.readUInt32LE(16), out.readUInt32LE(20)]).toEqual([10n, 2n ** 63n - 1n, 1, 99]);
    expect(encodeLkOut(undefined).readUInt32LE(16)).toBe(2);
    expect(out.length).toBe(Size.LK_OUT);
  });

  it("decodes both times of a SETATTR (utimensat), with nanoseconds, UTIME_NOW and the file handle", () => {
    const body = Buffer.alloc(88);
    body.writeUInt32LE(Fattr.ATIME | Fattr.MTIME | Fattr.MTIME_NOW | Fattr.FH | Fattr.SIZE | Fattr.MODE, 0);
    body.writeBigUInt64LE(12n, 8); // fh
    body.writeBigUInt64LE(4096n, 16); // size
    body.writeBigUInt64LE(981173106n, 32); // atime
    body.writeBigUInt64LE(1n, 40); // mtime (ignored: MTIME_NOW)
    body.writeUInt32LE(500_000_000, 56); // atimensec
    body.writeUInt32LE(0o600, 68); // mode
    const r = decodeRequest(request(Opcode.SETATTR, body), 128);
    expect(r.args).toEqual({ op: "SETATTR", set: { fh: 12, size: 4096, atime: 981173106500, atimeNs: 981173106_500_000_000n, mtime: "now", mode: 0o600 } });
    body.writeUInt32LE(Fattr.MTIME, 0);
    body.writeBigUInt64LE(1234n, 40);
    body.writeUInt32LE(7_000_000, 60);
    expect(decodeRequest(request(Opcode.SETATTR, body), 128).args).toEqual({ op: "SETATTR", set: { mtime: 1234007, mtimeNs: 1234_007_000_000n } });
    // Times before 1970 (negative seconds) keep their sign.
    body.writeBigInt64LE(-2n, 40);
    body.writeUInt32LE(1, 60);
    expect(decodeRequest(request(Opcode.SETATTR, body), 128).args).toMatchObject({ set: { mtimeNs: -1_999_999_999n } });
    // HANDLE_KILLPRIV_V2: a truncate (or chown) asking the file system to clear setuid/setgid.
    body.writeUInt32LE(Fattr.SIZE | Fattr.KILL_SUIDGID, 0);
    expect(decodeRequest(request(Opcode.SETATTR, body), 128).args).toEqual({ op: "SETATTR", set: { size: 4096, killSuidgid: true } });
  });

  it("decodes RENAME and RENAME2 (with flags) and SYMLINK's two names", () => {
    const r1 = decodeRequest(request(Opcode.RENAME, Buffer.concat([u64s(5n), cstr("a", "b")])), 52);
    expect(r1.args).toEqual({ op: "RENAME", newParent: 5, flags: 0, name: "a", newName: "b" });
    const body2 = Buffer.concat([u64s(6n), u32s(1, 0), cstr("old", "new")]);
    expect(decodeRequest(request(Opcode.RENAME2, body2), 40 + body2.length).args).toEqual({ op: "RENAME", newParent: 6, flags: 1, name: "old", newName: "new" });
    const body3 = cstr("link", "../target");
    expect(decodeRequest(request(Opcode.SYMLINK, body3), 40 + body3.length).args).toEqual({ op: "SYMLINK", name: "link", target: "../target" });
  });

  it("combines INIT's flags and flags2 when the kernel sets FUSE_INIT_EXT", () => {
    const body = u32s(7, 45, 131072, InitFlag.INIT_EXT + InitFlag.MAX_PAGES, 0b100000, ...Array(11).fill(0));
    const r = decodeRequest(request(Opcode.INIT, body), 40 + body.length);
    expect(r.args).toEqual({ op: "INIT", init: { major: 7, minor: 45, maxReadahead: 131072, flags: InitFlag.INIT_EXT + InitFlag.MAX_PAGES + 2 ** 37 } });
  });

  it("lists every BATCH_FORGET entry, and marks unknown opcodes unsupported", () => {
    const body = Buffer.concat([u32s(2, 0), u64s(10n, 3n, 11n, 1n)]);
    expect(decodeRequest(request(Opcode.BATCH_FORGET, body), 40 + body.length).args).toEqual({ op: "BATCH_FORGET", forgets: [{ ino: 10, nlookup: 3 }, { ino: 11, nlookup: 1 }] });
    expect(decodeRequest(request(Opcode.IOCTL, Buffer.alloc(32)), 72).args).toEqual({ op: "UNSUPPORTED", opcode: Opcode.IOCTL });
    expect(() => decodeRequest(Buffer.alloc(20), 20)).toThrow(MalformedRequest);
  });
});

describe("reply encoding", () => {
  it("lays out fuse_entry_out and fuse_attr as the kernel reads them", () => {
    const b = encodeEntry({ ino: 7, generation: 1, attr, entryTtlMs: 1500, attrTtlMs: 60_000 });
    expect(b.length).toBe(Size.ENTRY_OUT);
    expect(b.readBigUInt64LE(0)).toBe(7n);
    expect(b.readBigUInt64LE(16)).toBe(1n); // entry_valid seconds
    expect(b.readUInt32LE(32)).toBe(500_000_000); // entry_valid_nsec
    expect(b.readBigUInt64LE(24)).toBe(60n);
    const a = 40;
    expect(b.readBigUInt64LE(a + 8)).toBe(5n * 2n ** 32n + 3n); // size
    expect(b.readBigUInt64LE(a + 16)).toBe(BigInt(Math.ceil(attr.size / 512))); // blocks
    expect(b.readBigUInt64LE(a + 24)).toBe(1000n); // atime
    expect(b.readUInt32LE(a + 48)).toBe(500_250_000); // atimensec
    expect(b.readBigUInt64LE(a + 32)).toBe(2000n); // mtime
    expect(b.readUInt32LE(a + 52)).toBe(999_000_000);
    expect(b.readUInt32LE(a + 60)).toBe(0o100644);
    expect(b.readUInt32LE(a + 64)).toBe(2);
    expect(b.readUInt32LE(a + 68)).toBe(1000);
    expect(encodeAttrOut(attr, 1000).length).toBe(Size.ATTR_OUT);
  });

  it("asks for 1 MiB requests in fuse_init_out (max_write, max_pages) with the high flags in flags2", () => {
    const init = { major: 7, minor: 45, maxReadahead: 131072, flags: InitFlag.MAX_PAGES + InitFlag.PASSTHROUGH, maxBackground: 64, congestionThreshold: 48, maxWrite: 1 << 20, timeGran: 1, maxPages: 256, maxStackDepth: 1 };
    const b = encodeInitOut(init);
    expect(b.length).toBe(64);
    expect(b.readUInt32LE(20)).toBe(1 << 20);
    expect(b.readUInt16LE(28)).toBe(256);
    expect(b.readUInt32LE(12)).toBe(InitFlag.MAX_PAGES);
    expect(b.readUInt32LE(32)).toBe(1 << 5); // PASSTHROUGH is bit 37
    expect(b.readUInt32LE(36)).toBe(1); // max_stack_depth
    expect(decodeInitOut(b)).toEqual(init);
  });

  it("packs dirents 8-byte aligned and stops at the buffer size; direntplus carries the entry", () => {
    const names = ["a", "bbbbbbbbb", "cc", "d"];
    const entries = names.map((name, i) => ({ name, ino: 10 + i, type: 8, nextOffset: i + 1, entry: { ino: 10 + i, attr: { ...attr, ino: 10 + i }, entryTtlMs: 1, attrTtlMs: 1 } }));
    const all = encodeDirents(entries, 4096, false);
    expect(all.count).toBe(4);
    expect(all.data.length).toBe(32 + 40 + 32 + 32);
    expect(decodeDirents(all.data, false).map((d) => [d.name, d.ino, d.nextOffset])).toEqual(names.map((n, i) => [n, 10 + i, i + 1]));
    const some = encodeDirents(entries, 32 + 40 + 31, false);
    expect(some.count).toBe(2);
    const plus = encodeDirents(entries, 4096, true);
    expect(plus.data.length).toBe(160 + 168 + 160 + 160);
    expect(decodeDirents(plus.data, true).map((d) => d.entryIno)).toEqual([10, 11, 12, 13]);
  });

  it("writes nanosecond times exactly as seconds and nanoseconds, also before 1970 and next to a second's edge", () => {
    const cases = [0n, 1n, 999_999_999n, 1_000_000_000n, 1_764_000_000_999_999_999n, 1_764_000_001_000_000_000n, -1n, -1_000_000_000n, -1_999_999_999n, 9_000_000_000_000_000_001n];
    for (const ns of cases) {
      const b = encodeAttrOut({ ...attr, atimeNs: ns, mtimeNs: ns, ctimeNs: ns }, 0);
      const rem = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
      for (const [secAt, nsecAt] of [[40, 64], [48, 68], [56, 72]]) {
        expect([b.readBigInt64LE(secAt!), b.readUInt32LE(nsecAt!)]).toEqual([(ns - rem) / 1_000_000_000n, Number(rem)]);
      }
    }
  });

  it("packs multibyte names by their UTF-8 length, and a listing of many entries fills the size asked", () => {
    const names = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `é${i}` : i % 3 === 1 ? `名前-${i}` : `plain-${i}`));
    const entries = names.map((name, i) => ({ name, ino: 100 + i, type: 8, nextOffset: i + 1, entry: { ino: 100 + i, attr: { ...attr, ino: 100 + i }, entryTtlMs: 1, attrTtlMs: 1 } }));
    for (const plus of [false, true]) {
      const { data, count } = encodeDirents(entries, 4096, plus);
      const next = Math.ceil(((plus ? Size.DIRENTPLUS : Size.DIRENT) + Buffer.byteLength(names[count]!)) / 8) * 8;
      // Full: the next entry would not have fitted.
      expect(data.length + next).toBeGreaterThan(4096);
      expect(decodeDirents(data, plus).map((d) => d.name)).toEqual(names.slice(0, count));
    }
    expect(decodeDirents(encodeDirents(entries, 1 << 20, false).data, false).map((d) => d.name)).toEqual(names);
  });

  it("encodes notifications with unique 0, the code in the error field and a NUL after the name", () => {
    const e = encodeInvalEntry(9, "name");
    expect(e.length).toBe(16 + 16 + 5);
    expect(e.readUInt32LE(0)).toBe(e.length);
    expect(e.readInt32LE(4)).toBe(NotifyCode.INVAL_ENTRY);
    expect(e.readBigUInt64LE(8)).toBe(0n);
    expect(e.readBigUInt64LE(16)).toBe(9n);
    expect(e.readUInt32LE(24)).toBe(4);
    expect(e.subarray(32).toString("latin1")).toBe("name\0");
    const i = encodeInvalInode(9, -1, 0);
    expect(i.readInt32LE(4)).toBe(NotifyCode.INVAL_INODE);
    expect(i.readBigInt64LE(24)).toBe(-1n);
  });

  it("sends errors negated, and open and statfs replies in their struct sizes", () => {
    const err = errorReply(8, 2);
    expect([err.length, err.readUInt32LE(0), err.readInt32LE(4), Number(err.readBigUInt64LE(8))]).toEqual([16, 16, -2, 8]);
    const open = encodeOpenOut({ fh: 3, keepCache: true, directIo: true });
    expect([open.length, Number(open.readBigUInt64LE(0)), open.readUInt32LE(8)]).toEqual([16, 3, 0b11]);
    // FOPEN_PASSTHROUGH (bit 7) with fuse_open_out.backing_id, an int32 after open_flags.
    const passthrough = encodeOpenOut({ fh: 4, backingId: 9 });
    expect([passthrough.length, passthrough.readUInt32LE(8), passthrough.readInt32LE(12)]).toEqual([16, 1 << 7, 9]);
    expect(encodeStatfs({ blocks: 1, bfree: 1, bavail: 1, files: 1, ffree: 1, bsize: 4096, namelen: 255, frsize: 4096 }).length).toBe(Size.STATFS_OUT);
  });
});

describe("InodeMap", () => {
  it("keeps one number per key until it is forgotten, and never reuses a number", () => {
    const m = new InodeMap<string>("/");
    expect(m.ino("/")).toBe(1);
    const a = m.ino("/a");
    expect(m.ino("/a")).toBe(a);
    m.forget(a);
    expect(m.get(a)).toBeUndefined();
    const again = m.ino("/a");
    expect(again).not.toBe(a);
    m.forget(1);
    expect(m.get(1)).toBe("/");
    m.rekey(again, "/b");
    expect([m.get(again), m.peek("/a"), m.peek("/b")]).toEqual(["/b", undefined, again]);
  });

  it("reserves a number for a listed key without registering it; a lookup then gives that number", () => {
    const root = { ino: undefined as number | undefined };
    const m = new InodeMap(root, inoFieldSlots);
    expect(root.ino).toBe(1);
    const key = { ino: undefined as number | undefined };
    const shown = m.reserve(key);
    expect([m.get(shown), m.peek(key), m.size]).toEqual([undefined, undefined, 1]);
    expect(m.reserve(key)).toBe(shown);
    expect(m.ino(key)).toBe(shown);
    expect([m.get(shown), m.peek(key), m.size]).toEqual([key, shown, 2]);
    // Forgotten, the key keeps its number (stable slots): the next lookup answers the same one.
    m.forget(shown);
    expect([m.get(shown), m.peek(key), key.ino, m.size]).toEqual([undefined, undefined, shown, 1]);
    expect(m.ino(key)).toBe(shown);
    expect([m.get(shown), m.peek(key)]).toEqual([key, shown]);
    // Never given to another key.
    expect(m.ino({ ino: undefined })).toBeGreaterThan(shown);
  });
});
