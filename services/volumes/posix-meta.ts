import { LINK_ID_PATTERN, MAX_ID, MAX_RDEV, TIME_NS_PATTERN } from "../../protocol/volume-schemas.js";
import { type ManifestEntry, SPECIAL_TYPES, type TimeNs, VOLUME_LIMITS } from "../../protocol/volume.js";
import { invalid } from "../errors.js";

/** The namespaces a volume keeps attributes in (`system.*` belongs to the kernel: ACLs are not stored). */
const XATTR_PREFIXES = ["user.", "trusted.", "security."] as const;

// Checked again here, not only by the route's schema: restores, copies and other engines' callers commit too.
const TIME_NS_RE = new RegExp(TIME_NS_PATTERN);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const LINK_ID_RE = new RegExp(LINK_ID_PATTERN);
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The POSIX metadata fields of an entry, checked (absent fields stay absent). */
export type PosixMeta = Pick<ManifestEntry, "uid" | "gid" | "mtimeNs" | "atimeNs" | "ctimeNs" | "rdev" | "linkId" | "xattrs">;

export const isSpecial = (type: ManifestEntry["type"]): boolean => SPECIAL_TYPES.includes(type);

function checkId(v: unknown, what: string, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_ID) throw invalid(`Invalid ${what} ${JSON.stringify(v)} for '${path}': a whole number 0-${MAX_ID}`);
  return v as number;
}

function checkTime(v: unknown, what: string, path: string): TimeNs | undefined {
  if (v === undefined) return undefined;
  // Nanoseconds since the epoch as a signed 64-bit integer (±292 years), in decimal without leading zeros.
  if (typeof v !== "string" || !TIME_NS_RE.test(v) || BigInt(v) < INT64_MIN || BigInt(v) > INT64_MAX) {
    throw invalid(`Invalid ${what} ${JSON.stringify(v)} for '${path}': nanoseconds since the epoch as a decimal string (signed 64-bit)`);
  }
  return v;
}

/** Checks an xattr map against the namespaces and ext4's sizes; returns it, or undefined when empty. */
function checkXattrs(v: unknown, path: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(`Extended attributes of '${path}' must be an object of name → base64 value`);
  const out: Record<string, string> = {};
  let total = 0;
  for (const [name, value] of Object.entries(v)) {
    const nameBytes = Buffer.byteLength(name);
    const prefix = XATTR_PREFIXES.find((p) => name.startsWith(p));
    if (!prefix || name.length === prefix.length || name.includes("\0")) {
      throw invalid(`Extended attribute ${JSON.stringify(name.slice(0, 64))} of '${path}': names are ${XATTR_PREFIXES.join(", ")} followed by at least one character, without NUL`);
    }
    if (nameBytes > VOLUME_LIMITS.maxXattrNameBytes) {
      throw invalid(`Extended attribute name '${name.slice(0, 40)}…' of '${path}' is longer than ${VOLUME_LIMITS.maxXattrNameBytes} bytes (ERANGE)`);
    }
    if (typeof value !== "string" || !BASE64_RE.test(value)) throw invalid(`Extended attribute '${name}' of '${path}' needs a base64 value`);
    const valueBytes = Buffer.from(value, "base64").length;
    if (valueBytes > VOLUME_LIMITS.maxXattrValueBytes) {
      throw invalid(`Extended attribute '${name}' of '${path}' holds ${valueBytes} bytes; at most ${VOLUME_LIMITS.maxXattrValueBytes}`);
    }
    total += nameBytes + valueBytes;
    out[name] = value;
  }
  if (total > VOLUME_LIMITS.maxXattrTotalBytes) {
    throw invalid(`Extended attributes of '${path}' take ${total} bytes of names and values; at most ${VOLUME_LIMITS.maxXattrTotalBytes} per inode (ENOSPC)`);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Validates the POSIX metadata of one put entry whose type is already known to be valid. */
export function checkPosixMeta(raw: ManifestEntry, path: string): PosixMeta {
  const meta: PosixMeta = {};
  const set = <K extends keyof PosixMeta>(k: K, v: PosixMeta[K]) => {
    if (v !== undefined) meta[k] = v;
  };
  set("uid", checkId(raw.uid, "uid", path));
  set("gid", checkId(raw.gid, "gid", path));
  set("mtimeNs", checkTime(raw.mtimeNs, "mtimeNs", path));
  set("atimeNs", checkTime(raw.atimeNs, "atimeNs", path));
  set("ctimeNs", checkTime(raw.ctimeNs, "ctimeNs", path));
  if (raw.rdev !== undefined) {
    if (raw.type !== "char" && raw.type !== "block") throw invalid(`'${path}' is a ${raw.type}: only char and block devices carry rdev`);
    if (!Number.isInteger(raw.rdev) || raw.rdev < 0 || raw.rdev > MAX_RDEV) throw invalid(`Invalid rdev ${JSON.stringify(raw.rdev)} for '${path}': a whole number 0-${MAX_RDEV}`);
    meta.rdev = raw.rdev;
  }
  if (raw.linkId !== undefined) {
    if (typeof raw.linkId !== "string" || !LINK_ID_RE.test(raw.linkId)) throw invalid(`Invalid linkId ${JSON.stringify(raw.linkId)} for '${path}': 1-64 of A-Z a-z 0-9 _ -`);
    // As on Linux: every kind of node but a directory can have several names.
    if (raw.type === "directory") throw invalid(`Directory '${path}' can not carry a linkId: directories have one name`);
    meta.linkId = raw.linkId;
  }
  set("xattrs", checkXattrs(raw.xattrs, path));
  return meta;
}

/** The mtime in ms that `mtimeNs` stands for (rounded down, as the contract says), else the given one. */
export function mtimeMsOf(mtimeNs: TimeNs | undefined, mtimeMs: number): number {
  if (mtimeNs === undefined) return mtimeMs;
  const ns = BigInt(mtimeNs);
  const ms = ns / 1_000_000n - (ns < 0n && ns % 1_000_000n !== 0n ? 1n : 0n);
  return Number(ms);
}

/**
 * The names one commit puts per `linkId`: they are one inode, so they must be the same kind of
 * node with the same content (the mount puts every name of a changed inode; a reader that finds
 * them differing anyway, after merged concurrent commits, treats them as separate files).
 */
export class LinkGroups {
  private readonly first = new Map<string, { entry: ManifestEntry; names: number }>();

  add(entry: ManifestEntry): void {
    if (entry.linkId === undefined) return;
    const group = this.first.get(entry.linkId);
    if (!group) {
      this.first.set(entry.linkId, { entry, names: 1 });
      return;
    }
    const a = group.entry;
    const same =
      a.type === entry.type &&
      a.size === entry.size &&
      a.target === entry.target &&
      a.rdev === entry.rdev &&
      JSON.stringify(a.blocks ?? []) === JSON.stringify(entry.blocks ?? []);
    if (!same) {
      throw invalid(`'${entry.path}' and '${a.path}' share linkId ${entry.linkId} (one inode) but differ in type or content; nothing was committed`);
    }
    if (++group.names > VOLUME_LIMITS.maxLinks) {
      throw invalid(`linkId ${entry.linkId} names more than ${VOLUME_LIMITS.maxLinks} paths (EMLINK); nothing was committed`);
    }
  }
}
