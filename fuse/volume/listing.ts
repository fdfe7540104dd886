import { envelope } from "../../protocol/codec.js";
import type { EntryType, ManifestEntry, TreePage } from "../../protocol/volume.js";

/** Entry types by the code a listing keeps per name (index = code). */
const TYPES: readonly EntryType[] = ["file", "directory", "symlink", "fifo", "socket", "char", "block"];
/** Flag bit of a listed entry with a `linkId` (the low bits are its type code). */
const LINKED = 0x80;

/**
 * A directory's entries at one version, kept as the msgpack bytes the server sent (a `/list`
 * page, protocol/volume.ts `TreePage`) with, per entry, where its bytes and its name are and its
 * type: no JS object per entry. An entry is decoded when something asks for it (a node made, a
 * commit comparing a changed path), a fresh object each time. Decoding every page into objects
 * and keeping them (a `Map` of `ManifestEntry`) was most of a fresh mount's `find`: the
 * scavenger copied every kept object (docs/benchmarks.md). Immutable.
 */
export class Listing {
  /** Name → position, made on the first question by name (a walk that only lists asks none). */
  private byName: Map<string, number> | undefined;
  /**
   * Names decoded so far, by position: a listing shown again (the next `find`, `ls`) decodes
   * none twice. Strings only, made when first listed: ~1/5 of what a decoded entry kept.
   */
  private names: Array<string | undefined> | undefined;

  private constructor(
    private readonly bytes: Buffer,
    /** Entry i's bytes are bytes[starts[i], ends[i]). */
    private readonly starts: Uint32Array,
    private readonly ends: Uint32Array,
    /** Entry i's name is bytes[nameStarts[i], nameEnds[i]) (its path without the directory). */
    private readonly nameStarts: Uint32Array,
    private readonly nameEnds: Uint32Array,
    /** Type code | LINKED. */
    private readonly flags: Uint8Array,
  ) {}

  static readonly empty = new Listing(Buffer.alloc(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint8Array(0));

  /**
   * The listing of directory `dir` ("" the root) from the msgpack bodies of its `/list` pages,
   * in order. Entries not directly in `dir` (a file path lists as itself) are left out.
   */
  static fromPages(dir: string, pages: readonly Buffer[]): Listing {
    const reader = new ListingReader(dir);
    for (const p of pages) reader.add(p);
    return reader.listing();
  }

  /** Built from pages and their scans (ListingReader). */
  static fromScans(pages: readonly Buffer[], scans: readonly PageScan[]): Listing {
    const n = scans.reduce((k, s) => k + s.count, 0);
    if (n === 0) return Listing.empty;
    const starts = new Uint32Array(n);
    const ends = new Uint32Array(n);
    const nameStarts = new Uint32Array(n);
    const nameEnds = new Uint32Array(n);
    const flags = new Uint8Array(n);
    // One page (up to 10,000 entries) is kept as it came; the entries of several are joined.
    const parts: Buffer[] = [];
    let i = 0;
    let at = 0;
    for (let p = 0; p < scans.length; p++) {
      const s = scans[p]!;
      if (s.count === 0) continue;
      const first = scans.length === 1 ? 0 : s.starts[0]!;
      if (scans.length > 1) parts.push(pages[p]!.subarray(first, s.end));
      const shift = at - first;
      for (let k = 0; k < s.count; k++, i++) {
        starts[i] = s.starts[k]! + shift;
        ends[i] = s.ends[k]! + shift;
        nameStarts[i] = s.nameStarts[k]! + shift;
        nameEnds[i] = s.nameEnds[k]! + shift;
        flags[i] = s.flags[k]!;
      }
      at = s.end + shift;
    }
    return new Listing(scans.length === 1 ? pages[0]! : Buffer.concat(parts, at), starts, ends, nameStarts, nameEnds, flags);
  }

  /** A listing of `entries` (all directly in `dir`), as if the server had sent them (tests, reloads). */
  static of(dir: string, entries: readonly ManifestEntry[]): Listing {
    const page: TreePage = { version: 0, entries: [...entries] };
    return Listing.fromPages(dir, [Buffer.from(envelope.pack(page))]);
  }

  get size(): number {
    return this.flags.length;
  }

  nameAt(i: number): string {
    const names = (this.names ??= new Array<string | undefined>(this.size));
    return (names[i] ??= this.bytes.toString("utf8", this.nameStarts[i]!, this.nameEnds[i]!));
  }

  typeAt(i: number): EntryType {
    return TYPES[this.flags[i]! & ~LINKED]!;
  }

  /** Whether entry i has a `linkId` (a name of a hard link). */
  linkedAt(i: number): boolean {
    return (this.flags[i]! & LINKED) !== 0;
  }

  /** Entry i, decoded (a new object, the caller's). */
  entryAt(i: number): ManifestEntry {
    return envelope.unpack(this.bytes.subarray(this.starts[i]!, this.ends[i]!)) as ManifestEntry;
  }

  /** Position of `name`, -1 if not listed. */
  indexOf(name: string): number {
    if (this.byName === undefined) {
      this.byName = new Map();
      for (let i = 0; i < this.size; i++) this.byName.set(this.nameAt(i), i);
    }
    return this.byName.get(name) ?? -1;
  }

  has(name: string): boolean {
    return this.size > 0 && this.indexOf(name) >= 0;
  }

  get(name: string): ManifestEntry | undefined {
    const i = this.size > 0 ? this.indexOf(name) : -1;
    return i < 0 ? undefined : this.entryAt(i);
  }

  /** Every name and entry in listing order (each decoded). */
  *entries(): IterableIterator<[string, ManifestEntry]> {
    for (let i = 0; i < this.size; i++) yield [this.nameAt(i), this.entryAt(i)];
  }
}

/** What a scan of one page found: per entry, where it starts, where its name is, its flags. */
export interface PageScan {
  count: number;
  starts: number[];
  ends: number[];
  nameStarts: number[];
  nameEnds: number[];
  flags: number[];
  /** Where the entries end (the array's last byte + 1). */
  end: number;
  next: string | undefined;
}

/** Reads a directory's `/list` pages (msgpack bodies) as they come, into a Listing. */
export class ListingReader {
  private readonly prefix: Buffer;
  private readonly pages: Buffer[] = [];
  private readonly scans: PageScan[] = [];

  constructor(dir: string) {
    this.prefix = Buffer.from(dir === "" ? "" : `${dir}/`);
  }

  /** Takes the next page (kept: the caller must not change it); its `next` cursor, undefined on the last. */
  add(page: Buffer): string | undefined {
    const scan = scanPage(page, this.prefix);
    this.pages.push(page);
    this.scans.push(scan);
    return scan.next;
  }

  listing(): Listing {
    return Listing.fromScans(this.pages, this.scans);
  }
}

/** Where the string read last (readStr) starts; it ends at the returned offset. Module state: no object per string read. */
let strStart = 0;

/** Reads the msgpack string header at `pos`: sets strStart, returns where the string ends. */
function readStr(b: Buffer, pos: number): number {
  const t = b[pos]!;
  let len: number;
  if (t >= 0xa0 && t <= 0xbf) {
    len = t & 0x1f;
    strStart = pos + 1;
  } else if (t === 0xd9) {
    len = b[pos + 1]!;
    strStart = pos + 2;
  } else if (t === 0xda) {
    len = b.readUInt16BE(pos + 1);
    strStart = pos + 3;
  } else if (t === 0xdb) {
    len = b.readUInt32BE(pos + 1);
    strStart = pos + 5;
  } else throw new Error(`A listing has a non-string where a string belongs (0x${t?.toString(16)} at ${pos})`);
  if (strStart + len > b.length) throw new Error("A listing ends inside a string");
  return strStart + len;
}

/** Whether b[start, end) is the ASCII key `want`. */
function isKey(b: Buffer, start: number, end: number, want: string): boolean {
  if (end - start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[start + i] !== want.charCodeAt(i)) return false;
  return true;
}

/**
 * Walks a page's msgpack (a map with `entries`, an array of maps, and maybe `next`) without
 * decoding it: the offsets of each entry, of its name (the bytes of its `path` after `prefix`)
 * and its type. Throws on anything that is not such a page.
 */
function scanPage(b: Buffer, prefix: Buffer): PageScan {
  const out: PageScan = { count: 0, starts: [], ends: [], nameStarts: [], nameEnds: [], flags: [], end: 0, next: undefined };
  let pos = mapHeader(b, 0);
  for (let k = headerCount; k > 0; k--) {
    const keyEnd = readStr(b, pos);
    const keyStart = strStart;
    pos = keyEnd;
    if (isKey(b, keyStart, keyEnd, "entries")) {
      pos = arrayHeader(b, pos);
      for (let e = headerCount; e > 0; e--) pos = scanEntry(b, pos, prefix, out);
      out.end = pos;
    } else if (isKey(b, keyStart, keyEnd, "next") && b[pos] !== 0xc0) {
      pos = readStr(b, pos);
      out.next = b.toString("utf8", strStart, pos);
    } else pos = skip(b, pos);
  }
  if (pos !== b.length) throw new Error("A listing's bytes do not end where its last value does");
  return out;
}

/** Scans one entry (a map) at `pos`, recording it if it is directly in the listed directory; returns where it ends. */
function scanEntry(b: Buffer, pos: number, prefix: Buffer, out: PageScan): number {
  const start = pos;
  pos = mapHeader(b, pos);
  let nameStart = -1;
  let nameEnd = -1;
  let type = -1;
  let linked = false;
  for (let k = headerCount; k > 0; k--) {
    const keyEnd = readStr(b, pos);
    const keyStart = strStart;
    pos = keyEnd;
    if (isKey(b, keyStart, keyEnd, "path")) {
      pos = readStr(b, pos);
      // Directly in the directory: the prefix, then a name with no further "/".
      const from = strStart + prefix.length;
      if (pos > from && startsWith(b, strStart, prefix) && noSlash(b, from, pos)) {
        nameStart = from;
        nameEnd = pos;
      }
    } else if (isKey(b, keyStart, keyEnd, "type")) {
      pos = readStr(b, pos);
      type = typeCode(b, strStart, pos);
    } else if (isKey(b, keyStart, keyEnd, "linkId")) {
      linked = b[pos] !== 0xc0;
      pos = skip(b, pos);
    } else pos = skip(b, pos);
  }
  if (type < 0) throw new Error("A listed entry has no known type");
  if (nameStart >= 0) {
    out.starts.push(start);
    out.ends.push(pos);
    out.nameStarts.push(nameStart);
    out.nameEnds.push(nameEnd);
    out.flags.push(type | (linked ? LINKED : 0));
    out.count++;
  }
  return pos;
}

function startsWith(b: Buffer, at: number, prefix: Buffer): boolean {
  for (let i = 0; i < prefix.length; i++) if (b[at + i] !== prefix[i]) return false;
  return true;
}

/** The code of the entry type whose name is b[start, end), -1 if none (compared by length and a letter: no string made). */
function typeCode(b: Buffer, start: number, end: number): number {
  const c = b[start];
  switch (end - start) {
    case 4:
      return c === 0x63 ? 5 : c !== 0x66 ? -1 : b[start + 2] === 0x6c ? 0 : 3; // char; file, fifo
    case 9:
      return c === 0x64 ? 1 : -1; // directory
    case 7:
      return c === 0x73 ? 2 : -1; // symlink
    case 6:
      return c === 0x73 ? 4 : -1; // socket
    case 5:
      return c === 0x62 ? 6 : -1; // block
    default:
      return -1;
  }
}

function noSlash(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] === 0x2f) return false;
  return true;
}

/** Elements of the map or array header read last (mapHeader, arrayHeader). */
let headerCount = 0;

/** Reads a map header at `pos`: sets headerCount (pairs), returns where the pairs start. */
const mapHeader = (b: Buffer, pos: number): number => header(b, pos, 0x80, 0xde, "map");

/** Reads an array header at `pos`: sets headerCount, returns where the elements start. */
const arrayHeader = (b: Buffer, pos: number): number => header(b, pos, 0x90, 0xdc, "array");

/** A map's or array's header: its fix form (`fix` | n, n < 16), then its 16- and 32-bit forms (`wide`, `wide` + 1). */
function header(b: Buffer, pos: number, fix: number, wide: number, what: string): number {
  const t = b[pos]!;
  if (t >= fix && t <= fix + 0x0f) {
    headerCount = t & 0x0f;
    return pos + 1;
  }
  if (t === wide) {
    headerCount = b.readUInt16BE(pos + 1);
    return pos + 3;
  }
  if (t === wide + 1) {
    headerCount = b.readUInt32BE(pos + 1);
    return pos + 5;
  }
  throw new Error(`A listing has no ${what} where one belongs (0x${t?.toString(16)} at ${pos})`);
}

/** Where the msgpack value at `pos` ends. */
function skip(b: Buffer, pos: number): number {
  const t = b[pos];
  if (t === undefined) throw new Error("A listing ends inside a value");
  if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return pos + 1;
  if (t >= 0xa0 && t <= 0xbf) return pos + 1 + (t & 0x1f);
  if (t >= 0x80 && t <= 0x8f) return skipN(b, pos + 1, 2 * (t & 0x0f));
  if (t >= 0x90 && t <= 0x9f) return skipN(b, pos + 1, t & 0x0f);
  switch (t) {
    case 0xc4:
    case 0xd9:
      return pos + 2 + b[pos + 1]!;
    case 0xc5:
    case 0xda:
      return pos + 3 + b.readUInt16BE(pos + 1);
    case 0xc6:
    case 0xdb:
      return pos + 5 + b.readUInt32BE(pos + 1);
    case 0xc7:
      return pos + 3 + b[pos + 1]!;
    case 0xc8:
      return pos + 4 + b.readUInt16BE(pos + 1);
    case 0xc9:
      return pos + 6 + b.readUInt32BE(pos + 1);
    case 0xca:
      return pos + 5;
    case 0xcb:
      return pos + 9;
    case 0xcc:
    case 0xd0:
      return pos + 2;
    case 0xcd:
    case 0xd1:
      return pos + 3;
    case 0xce:
    case 0xd2:
      return pos + 5;
    case 0xcf:
    case 0xd3:
      return pos + 9;
    case 0xd4:
      return pos + 3;
    case 0xd5:
      return pos + 4;
    case 0xd6:
      return pos + 6;
    case 0xd7:
      return pos + 10;
    case 0xd8:
      return pos + 18;
    case 0xdc:
      return skipN(b, pos + 3, b.readUInt16BE(pos + 1));
    case 0xdd:
      return skipN(b, pos + 5, b.readUInt32BE(pos + 1));
    case 0xde:
      return skipN(b, pos + 3, 2 * b.readUInt16BE(pos + 1));
    case 0xdf:
      return skipN(b, pos + 5, 2 * b.readUInt32BE(pos + 1));
    default:
      throw new Error(`A listing has an unknown msgpack type 0x${t.toString(16)}`);
  }
}

function skipN(b: Buffer, pos: number, n: number): number {
  for (let i = 0; i < n; i++) pos = skip(b, pos);
  return pos;
}
