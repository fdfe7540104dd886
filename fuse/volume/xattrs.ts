import { constants } from "node:os";
import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { Errno } from "../kernel/types.js";

const E = constants.errno;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;

/** One node's extended attributes: full name (`user.x`) → value. */
export type Xattrs = Map<string, Buffer>;

/** What the rules look at of the node an attribute is on. */
export interface XattrHolder {
  /** "file", "directory", "symlink", or a special file's type. */
  readonly type: string;
  xattrs?: Xattrs;
}

type Namespace = "user" | "trusted" | "security";

/**
 * The namespace of a name, with ext4's answers: ERANGE for an empty name or one over 255 bytes,
 * EINVAL for a bare prefix (`user.`), EOPNOTSUPP for other namespaces (system.* ACLs included).
 */
function namespaceOf(name: string): Namespace {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > VOLUME_LIMITS.maxXattrNameBytes) throw new Errno(E.ERANGE);
  const dot = name.indexOf(".");
  const ns = dot > 0 ? name.slice(0, dot) : "";
  if (ns !== "user" && ns !== "trusted" && ns !== "security") throw new Errno(E.EOPNOTSUPP);
  if (dot === name.length - 1) throw new Errno(E.EINVAL);
  return ns;
}

/**
 * Who may do what, as Linux's VFS and ext4 decide it (the kernel checks most of this before
 * asking, with the modes this mount reports; the file system holds the same line): trusted.*
 * is root's (others cannot set it and do not see it), user.* lives on regular files and
 * directories only, security.* is set by root only (the capability module's CAP_SYS_ADMIN,
 * CAP_SETFCAP for security.capability) and read by anyone.
 */
function allowed(node: XattrHolder, ns: Namespace, uid: number, write: boolean): boolean {
  if (ns === "trusted") return uid === 0;
  if (ns === "user") return node.type === "file" || node.type === "directory";
  return !write || uid === 0;
}

/** getxattr(2): ENODATA when absent (or hidden from the caller). */
export function getXattr(node: XattrHolder, name: string, uid: number): Buffer {
  const value = xattrValue(node, name, uid);
  if (!value) throw new Errno(E.ENODATA);
  return value;
}

/** getxattr(2)'s value, undefined when absent (or hidden from the caller). */
export function xattrValue(node: XattrHolder, name: string, uid: number): Buffer | undefined {
  return allowed(node, namespaceOf(name), uid, false) ? node.xattrs?.get(name) : undefined;
}

/** listxattr(2): the names the caller may see (trusted.* only for root). */
export function listXattrs(node: XattrHolder, uid: number): string[] {
  return [...(node.xattrs?.keys() ?? [])].filter((n) => uid === 0 || !n.startsWith("trusted."));
}

/**
 * setxattr(2): XATTR_CREATE fails with EEXIST on an existing name, XATTR_REPLACE with ENODATA on
 * a missing one; ENOSPC when the value, or all names and values of the node together, pass
 * VOLUME_LIMITS (ext4 answers ENOSPC for whatever does not fit its one attribute block; E2BIG
 * only past Linux's 64 KiB, which the kernel refuses before asking).
 */
export function setXattr(node: XattrHolder, name: string, value: Buffer, flags: number, uid: number): void {
  const ns = namespaceOf(name);
  if (!allowed(node, ns, uid, true)) throw new Errno(E.EPERM);
  const old = node.xattrs?.get(name);
  if (flags & XATTR_CREATE && old) throw new Errno(E.EEXIST);
  if (flags & XATTR_REPLACE && !old) throw new Errno(E.ENODATA);
  if (value.length > VOLUME_LIMITS.maxXattrValueBytes) throw new Errno(E.ENOSPC);
  const total = xattrBytes(node.xattrs) - (old ? Buffer.byteLength(name) + old.length : 0) + Buffer.byteLength(name) + value.length;
  if (total > VOLUME_LIMITS.maxXattrTotalBytes) throw new Errno(E.ENOSPC);
  node.xattrs ??= new Map();
  node.xattrs.set(name, Buffer.from(value));
}

/** removexattr(2): ENODATA when absent. */
export function removeXattr(node: XattrHolder, name: string, uid: number): void {
  const ns = namespaceOf(name);
  if (!allowed(node, ns, uid, true)) throw new Errno(E.EPERM);
  if (!node.xattrs?.delete(name)) throw new Errno(E.ENODATA);
  if (node.xattrs.size === 0) node.xattrs = undefined;
}

/** Bytes of all names and values together, as the volume's limit counts them. */
function xattrBytes(x: Xattrs | undefined): number {
  let n = 0;
  for (const [name, value] of x ?? []) n += Buffer.byteLength(name) + value.length;
  return n;
}

/** As ManifestEntry.xattrs and journal records carry them (name → base64; absent when none). */
export function xattrsToWire(x: Xattrs | undefined): Record<string, string> | undefined {
  if (!x || x.size === 0) return undefined;
  const out: Record<string, string> = {};
  for (const name of [...x.keys()].sort()) out[name] = x.get(name)!.toString("base64");
  return out;
}

export function xattrsFromWire(wire: Record<string, string> | undefined): Xattrs | undefined {
  if (!wire) return undefined;
  const x: Xattrs = new Map(Object.entries(wire).map(([name, b64]) => [name, Buffer.from(b64, "base64")]));
  return x.size > 0 ? x : undefined;
}

/** Whether two entries' attributes are the same (a commit sends an entry only when something differs). */
export function sameXattrs(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a![k] === b?.[k]);
}
