import { describe, expect, it } from "vitest";
import { type LockRequest, LockTable } from "./lock-table.js";

const MAX = 2n ** 63n - 1n;
const req = (owner: number, kind: LockRequest["kind"], start: number | bigint, end: number | bigint, fh = owner): LockRequest => ({
  owner: BigInt(owner),
  kind,
  start: BigInt(start),
  end: BigInt(end),
  pid: 100 + owner,
  fh,
});
const shape = (t: LockTable<string>, key = "f") => t.locks(key).map((l) => `${l.owner}:${l.kind[0]}:${l.start}-${l.end === MAX ? "max" : l.end}`);

describe("LockTable", () => {
  it("read locks share, a write lock conflicts with any other owner's lock over an overlapping range", () => {
    const t = new LockTable<string>();
    expect(t.trySet("f", req(1, "read", 0, 99))).toBeUndefined();
    expect(t.trySet("f", req(2, "read", 50, 150))).toBeUndefined();
    const c = t.trySet("f", req(3, "write", 120, 130));
    expect(c).toMatchObject({ owner: 2n, kind: "read", start: 50n, end: 150n, pid: 102 });
    expect(t.trySet("f", req(3, "write", 151, MAX))).toBeUndefined();
    // Another file is another table entry.
    expect(t.trySet("g", req(3, "write", 0, MAX))).toBeUndefined();
    expect(t.conflicting("f", req(1, "read", 200, 300))).toMatchObject({ owner: 3n, kind: "write" });
  });

  it("an owner's new lock splits, replaces and merges its own older ones; unlock cuts holes", () => {
    const t = new LockTable<string>();
    t.trySet("f", req(1, "read", 0, 99));
    t.trySet("f", req(1, "write", 40, 59));
    expect(shape(t)).toEqual(["1:r:0-39", "1:w:40-59", "1:r:60-99"]);
    t.trySet("f", req(1, "read", 40, 59));
    expect(shape(t)).toEqual(["1:r:0-99"]);
    t.trySet("f", req(1, "read", 100, 109));
    expect(shape(t)).toEqual(["1:r:0-109"]);
    t.trySet("f", req(1, "unlock", 10, 19));
    expect(shape(t)).toEqual(["1:r:0-9", "1:r:20-109"]);
    t.trySet("f", req(1, "unlock", 0, MAX));
    expect(shape(t)).toEqual([]);
  });

  it("a waiter is granted once the conflicting lock goes, in arrival order; a waiter that turns write into read lets readers in", async () => {
    const t = new LockTable<string>();
    t.trySet("f", req(1, "write", 0, MAX));
    const order: string[] = [];
    const w2 = t.set("f", req(2, "write", 0, 9)).then((o) => order.push(`2 ${o}`));
    const w3 = t.set("f", req(3, "read", 5, 5)).then((o) => order.push(`3 ${o}`));
    expect(t.waiting).toBe(2);
    t.trySet("f", req(1, "unlock", 0, MAX));
    await w2;
    expect(order).toEqual(["2 granted"]);
    t.trySet("f", req(2, "read", 0, 9));
    await w3;
    expect(order).toEqual(["2 granted", "3 granted"]);
    expect(shape(t)).toEqual(["2:r:0-9", "3:r:5-5"]);
  });

  it("an aborted wait answers interrupted and takes nothing", async () => {
    const t = new LockTable<string>();
    t.trySet("f", req(1, "write", 0, MAX));
    const ac = new AbortController();
    const w = t.set("f", req(2, "write", 0, MAX), ac.signal);
    ac.abort();
    expect(await w).toBe("interrupted");
    expect(t.waiting).toBe(0);
    t.releaseOwner("f", 1n);
    expect(shape(t)).toEqual([]);
  });

  it("finds a deadlock across files instead of waiting for ever", async () => {
    const t = new LockTable<string>();
    t.trySet("a", req(1, "write", 0, 0));
    t.trySet("b", req(2, "write", 0, 0));
    const w1 = t.set("b", req(1, "write", 0, 0));
    expect(await t.set("a", req(2, "write", 0, 0))).toBe("deadlock");
    t.releaseOwner("b", 2n);
    expect(await w1).toBe("granted");
  });

  it("drops an owner's locks (close), or those taken through one open file (release), and wakes waiters", async () => {
    const t = new LockTable<string>();
    t.trySet("f", req(1, "write", 0, 9, 7));
    t.trySet("f", req(1, "write", 20, 29, 8));
    t.trySet("f", req(2, "read", 40, 49, 9));
    t.releaseFile("f", 7);
    expect(shape(t)).toEqual(["1:w:20-29", "2:r:40-49"]);
    const w = t.set("f", req(3, "write", 0, MAX));
    t.releaseOwner("f", 1n);
    expect(t.waiting).toBe(1);
    t.releaseFile("f", 9);
    expect(await w).toBe("granted");
    expect(shape(t)).toEqual(["3:w:0-max"]);
  });
});
