import { constants } from "node:os";
import { describe, expect, it } from "vitest";
import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { getXattr, listXattrs, removeXattr, sameXattrs, setXattr, type XattrHolder, xattrsFromWire, xattrsToWire } from "./xattrs.js";

const E = constants.errno;
const errnoOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { errno: number }).errno;
  }
  return 0;
};
const ROOT = 0;
const USER = 1000;

describe("extended attribute rules", () => {
  it("sets, replaces, reads, lists and removes, with XATTR_CREATE / XATTR_REPLACE", () => {
    const f: XattrHolder = { type: "file" };
    setXattr(f, "user.a", Buffer.from("1"), 0, USER);
    expect(errnoOf(() => setXattr(f, "user.a", Buffer.from("2"), 1, USER))).toBe(E.EEXIST);
    expect(errnoOf(() => setXattr(f, "user.b", Buffer.from("2"), 2, USER))).toBe(E.ENODATA);
    setXattr(f, "user.a", Buffer.from("2"), 2, USER);
    setXattr(f, "user.empty", Buffer.alloc(0), 0, USER);
    expect(getXattr(f, "user.a", USER).toString()).toBe("2");
    expect(getXattr(f, "user.empty", USER).length).toBe(0);
    expect(listXattrs(f, USER).sort()).toEqual(["user.a", "user.empty"]);
    removeXattr(f, "user.a", USER);
    expect(errnoOf(() => removeXattr(f, "user.a", USER))).toBe(E.ENODATA);
    expect(errnoOf(() => getXattr(f, "user.a", USER))).toBe(E.ENODATA);
  });

  it("answers namespaces and names as ext4 does", () => {
    const f: XattrHolder = { type: "file" };
    expect(errnoOf(() => setXattr(f, "system.posix_acl_access", Buffer.from("x"), 0, ROOT))).toBe(E.EOPNOTSUPP);
    expect(errnoOf(() => setXattr(f, "foo.bar", Buffer.from("x"), 0, ROOT))).toBe(E.EOPNOTSUPP);
    expect(errnoOf(() => setXattr(f, "user.", Buffer.from("x"), 0, ROOT))).toBe(E.EINVAL);
    expect(errnoOf(() => setXattr(f, `user.${"n".repeat(251)}`, Buffer.from("x"), 0, ROOT))).toBe(E.ERANGE);
    expect(errnoOf(() => setXattr(f, `user.${"n".repeat(250)}`, Buffer.from("x"), 0, ROOT))).toBe(0);
    // user.* only on files and directories; trusted.* and security.* anywhere.
    const link: XattrHolder = { type: "symlink" };
    expect(errnoOf(() => setXattr(link, "user.a", Buffer.from("x"), 0, ROOT))).toBe(E.EPERM);
    expect(errnoOf(() => getXattr(link, "user.a", ROOT))).toBe(E.ENODATA);
    expect(errnoOf(() => setXattr({ type: "fifo" }, "user.a", Buffer.from("x"), 0, ROOT))).toBe(E.EPERM);
    setXattr(link, "trusted.t", Buffer.from("x"), 0, ROOT);
    setXattr(link, "security.s", Buffer.from("x"), 0, ROOT);
    expect(errnoOf(() => setXattr(link, "security.u", Buffer.from("x"), 0, USER))).toBe(E.EPERM);
    expect(getXattr(link, "security.s", USER).toString()).toBe("x");
    expect(listXattrs(link, ROOT).sort()).toEqual(["security.s", "trusted.t"]);
  });

  it("keeps trusted.* to root: others cannot set or remove it, and neither read nor list it", () => {
    const d: XattrHolder = { type: "directory" };
    expect(errnoOf(() => setXattr(d, "trusted.t", Buffer.from("x"), 0, USER))).toBe(E.EPERM);
    setXattr(d, "trusted.t", Buffer.from("x"), 0, ROOT);
    setXattr(d, "user.u", Buffer.from("y"), 0, USER);
    expect(errnoOf(() => getXattr(d, "trusted.t", USER))).toBe(E.ENODATA);
    expect(errnoOf(() => removeXattr(d, "trusted.t", USER))).toBe(E.EPERM);
    expect(listXattrs(d, USER)).toEqual(["user.u"]);
    expect(getXattr(d, "trusted.t", ROOT).toString()).toBe("x");
    expect(errnoOf(() => setXattr(d, "security.capability", Buffer.from("c"), 0, USER))).toBe(E.EPERM);
    expect(errnoOf(() => removeXattr(d, "user.u", ROOT))).toBe(0);
  });

  it("refuses with ENOSPC what passes the value or per-inode total limit; a replace counts the new size only", () => {
    const f: XattrHolder = { type: "file" };
    const max = VOLUME_LIMITS.maxXattrTotalBytes;
    expect(errnoOf(() => setXattr(f, "user.big", Buffer.alloc(VOLUME_LIMITS.maxXattrValueBytes + 1), 0, ROOT))).toBe(E.ENOSPC);
    setXattr(f, "user.a", Buffer.alloc(max - "user.a".length), 0, ROOT);
    expect(errnoOf(() => setXattr(f, "user.b", Buffer.alloc(0), 0, ROOT))).toBe(E.ENOSPC);
    setXattr(f, "user.a", Buffer.alloc(10), 0, ROOT);
    setXattr(f, "user.b", Buffer.alloc(100), 0, ROOT);
    expect(f.xattrs?.size).toBe(2);
  });

  it("round-trips the wire form (base64, sorted, absent when empty) and compares it", () => {
    const f: XattrHolder = { type: "file" };
    expect(xattrsToWire(f.xattrs)).toBeUndefined();
    setXattr(f, "user.z", Buffer.from([0, 255, 1]), 0, ROOT);
    setXattr(f, "security.a", Buffer.from("v"), 0, ROOT);
    const wire = xattrsToWire(f.xattrs)!;
    expect(Object.keys(wire)).toEqual(["security.a", "user.z"]);
    expect(xattrsFromWire(wire)?.get("user.z")).toEqual(Buffer.from([0, 255, 1]));
    expect(sameXattrs(wire, { ...wire })).toBe(true);
    expect(sameXattrs(wire, { ...wire, "user.z": "AA==" })).toBe(false);
    expect(sameXattrs(undefined, {})).toBe(true);
    removeXattr(f, "user.z", ROOT);
    removeXattr(f, "security.a", ROOT);
    expect(f.xattrs).toBeUndefined();
  });
});
