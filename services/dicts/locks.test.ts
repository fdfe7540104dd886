import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RootDatabase, open } from "lmdb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TestClock } from "../../lib/clock.js";
import { GroupCommit } from "../kv-group-commit.js";
import { openDictDbs } from "./layout.js";
import { DictLocks } from "./locks.js";

let dir: string;
let root: RootDatabase;
let clock: TestClock;
let locks: DictLocks;
const D = "di-test";
const K = Buffer.from("job");

function openLocks(): DictLocks {
  root = open({ path: dir });
  return new DictLocks(openDictDbs(root), new GroupCommit(root), clock);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "silo-dict-locks-"));
  clock = new TestClock();
  locks = openLocks();
});
afterEach(async () => {
  await root.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("DictLocks", () => {
  it("grants a free lock at once, with a fencing token that grows with every grant", async () => {
    const a = await locks.acquire(D, K, 1000, 0);
    expect(a).toMatchObject({ token: 1, expiresAt: clock.now() + 1000 });
    expect(await locks.acquire(D, K, 1000, 0)).toBeUndefined();
    expect(await locks.release(D, K, a!.leaseId)).toBe(true);
    expect((await locks.acquire(D, K, 1000, 0))?.token).toBe(2);
    expect((await locks.acquire(D, Buffer.from("other"), 1000, 0))?.token).toBe(3);
  });

  it("a lease lapses exactly at its TTL; the holder can no longer renew or release it", async () => {
    const a = (await locks.acquire(D, K, 1000, 0))!;
    await clock.advance(999);
    expect(await locks.acquire(D, K, 1000, 0)).toBeUndefined();
    await clock.advance(1);
    const b = await locks.acquire(D, K, 1000, 0);
    expect(b?.token).toBe(2);
    await expect(locks.renew(D, K, a.leaseId, 1000)).rejects.toMatchObject({ code: "CONFLICT" });
    expect(await locks.release(D, K, a.leaseId)).toBe(false);
  });

  it("renewal extends the lease from now", async () => {
    const a = (await locks.acquire(D, K, 1000, 0))!;
    await clock.advance(800);
    expect((await locks.renew(D, K, a.leaseId, 1000)).expiresAt).toBe(clock.now() + 1000);
    await clock.advance(900);
    expect(await locks.acquire(D, K, 1000, 0)).toBeUndefined();
  });

  it("a waiter gets the lock when the holder releases it, first come first served", async () => {
    const a = (await locks.acquire(D, K, 60_000, 0))!;
    const order: string[] = [];
    const noted = (name: string) => <T>(lease: T) => {
      order.push(name);
      return lease;
    };
    const w1 = locks.acquire(D, K, 1000, 30_000).then(noted("w1"));
    const w2 = locks.acquire(D, K, 1000, 30_000).then(noted("w2"));
    await clock.advance(0);
    await locks.release(D, K, a.leaseId);
    const l1 = (await w1)!;
    expect(order).toEqual(["w1"]);
    await locks.release(D, K, l1.leaseId);
    expect((await w2)?.token).toBe(3);
    expect(order).toEqual(["w1", "w2"]);
  });

  it("a waiter gets the lock when the lease runs out, and gives up when its own wait ends first", async () => {
    await locks.acquire(D, K, 5000, 0);
    const patient = locks.acquire(D, K, 1000, 10_000);
    const hasty = locks.acquire(D, K, 1000, 2000);
    await clock.advance(2000);
    expect(await hasty).toBeUndefined();
    await clock.advance(3000);
    expect((await patient)?.token).toBe(2);
  });

  it("an aborted waiter stops waiting and never holds the lock", async () => {
    const a = (await locks.acquire(D, K, 60_000, 0))!;
    const ac = new AbortController();
    const waiting = locks.acquire(D, K, 1000, 30_000, ac.signal);
    await clock.advance(0);
    ac.abort();
    expect(await waiting).toBeUndefined();
    await locks.release(D, K, a.leaseId);
    expect((await locks.acquire(D, K, 1000, 0))?.token).toBe(2);
  });

  it("fencing tokens survive a restart and a purge drops the dict's locks", async () => {
    await locks.acquire(D, K, 60_000, 0);
    await root.close();
    locks = openLocks();
    expect(await locks.acquire(D, K, 1000, 0)).toBeUndefined();
    await clock.advance(60_000);
    expect((await locks.acquire(D, K, 1000, 0))?.token).toBe(2);
    await locks.purge(D);
    expect((await locks.acquire(D, K, 1000, 0))?.token).toBe(1);
  });
});
