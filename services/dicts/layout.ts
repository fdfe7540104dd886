import type { Database, RootDatabase } from "lmdb";

/**
 * How dict data sits in the shared LMDB environment. Every key starts with the dict's id
 * (fixed length, ASCII), so one dict is one contiguous key range.
 *
 * - `dict-entries`: id+key → value bytes (msgpack made by the client, never decoded here)
 * - `dict-meta`:    id+key → 16 bytes: last access (ms, f64) and the time its expiry-index row is filed under
 * - `dict-expiry`:  time (f64 BE, sorts by time) + id+key → empty; the sweeper walks it oldest first
 * - `dict-locks`:   id+key → the lease holding that lock
 * - `dict-fencing`: id → last fencing token handed out for the dict
 */
export interface DictDbs {
  entries: Database<Buffer, Buffer>;
  meta: Database<Buffer, Buffer>;
  expiry: Database<Buffer, Buffer>;
  locks: Database<LeaseRecord, Buffer>;
  fencing: Database<number, string>;
}

export interface LeaseRecord {
  leaseId: string;
  token: number;
  expiresAt: number;
}

export function openDictDbs(root: RootDatabase): DictDbs {
  const binary = { keyEncoding: "binary", encoding: "binary" } as const;
  return {
    entries: root.openDB<Buffer, Buffer>({ name: "dict-entries", ...binary }),
    meta: root.openDB<Buffer, Buffer>({ name: "dict-meta", ...binary }),
    expiry: root.openDB<Buffer, Buffer>({ name: "dict-expiry", ...binary }),
    locks: root.openDB<LeaseRecord, Buffer>({ name: "dict-locks", keyEncoding: "binary", encoding: "json" }),
    fencing: root.openDB<number, string>({ name: "dict-fencing", encoding: "json" }),
  };
}

/** The LMDB key of `key` in dict `dictId`. */
export function fullKey(dictId: string, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(dictId.length + key.length);
  out.write(dictId, 0, "latin1");
  out.set(key, dictId.length);
  return out;
}

/** The key range holding one dict: [id, id with its last byte + 1). */
export function dictRange(dictId: string): { start: Buffer; end: Buffer } {
  const start = Buffer.from(dictId, "latin1");
  const end = Buffer.from(start);
  end[end.length - 1]! += 1;
  return { start, end };
}

export const userKey = (dictId: string, full: Buffer): Buffer => full.subarray(dictId.length);

export interface EntryMeta {
  lastAccess: number;
  indexedAt: number;
}

export function encodeMeta(meta: EntryMeta): Buffer {
  const buf = Buffer.allocUnsafe(16);
  buf.writeDoubleBE(meta.lastAccess, 0);
  buf.writeDoubleBE(meta.indexedAt, 8);
  return buf;
}

export const decodeMeta = (buf: Buffer): EntryMeta => ({ lastAccess: buf.readDoubleBE(0), indexedAt: buf.readDoubleBE(8) });

/** Expiry-index key: positive doubles in big-endian byte order sort in numeric order. */
export function expiryKey(at: number, full: Buffer): Buffer {
  const out = Buffer.allocUnsafe(8 + full.length);
  out.writeDoubleBE(at, 0);
  full.copy(out, 8);
  return out;
}

export const EMPTY = Buffer.alloc(0);
