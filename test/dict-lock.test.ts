import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConflictError } from "../client/index.js";
import { JsonLinesChild } from "./helpers/child.js";
import { open } from "lmdb";
import { eventually } from "./helpers/eventually.js";
import { inProcessFixture } from "./helpers/in-process-server.js";
import { siloServerFixture } from "./helpers/silo-server.js";

const CHILD = join(import.meta.dirname, "fixtures/dict-child.mjs");

const children: JsonLinesChild[] = [];
/** A real `silo serve` process, for what needs one (kill -9 of the server). */
const fx = siloServerFixture();
/** The server in this process on a TestClock: lease expiry happens when the test moves time, never by waiting. */
const ip = inProcessFixture();
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill()));
});

const child = (env: NodeJS.ProcessEnv, ...args: string[]) => {
  const c = new JsonLinesChild(CHILD, args, env);
  children.push(c);
  return c;
};

/** The expiry the in-process server has stored for the lease on `key` of a dict (read from its LMDB files). */
function storedExpiry(dictId: string, key: string): number | undefined {
  const env = open({ path: `${ip.server.home}/data/kv`, readOnly: true, maxDbs: 64 });
  try {
    const locks = env.openDB<{ expiresAt: number }, Buffer>({ name: "dict-locks", keyEncoding: "binary", encoding: "json" });
    // The client packs string keys with msgpack: find the row by its id prefix and the key's text.
    for (const { key: k, value } of locks.getRange({ start: Buffer.from(dictId, "latin1") })) {
      if (!k.subarray(0, dictId.length).equals(Buffer.from(dictId, "latin1"))) break;
      if (k.subarray(dictId.length).includes(Buffer.from(key))) return value.expiresAt;
    }
    return undefined;
  } finally {
    void env.close();
  }
}

describe("Dict locks", () => {
  it("two processes contending never both hold the lock; fencing tokens grow", async () => {
    const d = await fx.silo.dicts.fromName<string, number>("contended", { createIfMissing: true });
    const rounds = 15;
    const a = child(fx.server.env, "contend", "contended", String(rounds));
    const b = child(fx.server.env, "contend", "contended", String(rounds));
    await Promise.all([a.done(), b.done()]);
    expect(await d.get("counter")).toBe(2 * rounds);

    type Hold = { pid: number; token: number; start: number; end: number };
    const holds = [...a.output, ...b.output] as Hold[];
    expect(new Set(holds.map((h) => h.pid)).size).toBe(2);
    holds.sort((x, y) => x.token - y.token);
    expect(new Set(holds.map((h) => h.token)).size).toBe(holds.length);
    // In token order the critical sections never overlap, and tokens were handed out in time order.
    for (let i = 1; i < holds.length; i++) expect(holds[i]!.start).toBeGreaterThanOrEqual(holds[i - 1]!.end);
  });

  it("a crashed holder's lock is taken over only after its lease expires", async () => {
    const { clock } = ip.server;
    const d = await ip.silo.dicts.fromName("crash", { createIfMissing: true });
    const holder = child(ip.server.env, "hold", "crash", "3000");
    const { token } = await holder.next<{ token: number }>();
    const granted = storedExpiry(d.id, "held")!;
    expect(granted).toBe(clock.now() + 3000);
    // While the holder lives its lease is renewed (every third of the TTL): still held past its first expiry.
    await clock.advance(2000);
    await eventually(() => expect(storedExpiry(d.id, "held")).toBe(clock.now() + 3000));
    await clock.advance(2000);
    await expect(d.lock("held", { waitMs: 0 })).rejects.toBeInstanceOf(ConflictError);
    await holder.kill("SIGKILL");
    // Dead, but its lease runs to the end its last renewal set (it renews on its own timer, in
    // real time, so maybe once more since): a millisecond before, the lock is still refused.
    const expiry = storedExpiry(d.id, "held")!;
    expect(expiry).toBeGreaterThan(granted);
    await clock.advance(expiry - clock.now() - 1);
    await expect(d.lock("held", { waitMs: 0 })).rejects.toBeInstanceOf(ConflictError);
    const waiting = d.lock("held", { waitMs: 10_000 });
    await ip.server.longPollsOpen("dict", 1);
    await clock.advance(1);
    const lease = await waiting;
    expect(lease.token).toBeGreaterThan(token);
    await lease.release();
  });

  it("release wakes a waiter at once (long before the lease would expire)", async () => {
    const { clock } = ip.server;
    const d = await ip.silo.dicts.fromName("wake", { createIfMissing: true });
    const first = await d.lock("k", { ttlMs: 60_000 });
    expect(first.held).toBe(true);
    await using other = ip.server.client();
    const d2 = await other.dicts.fromName("wake");
    const waiting = d2.lock("k", { waitMs: 20_000 });
    // The server holds the waiter; its clock never moves, so neither the lease (60 s) nor the
    // wait (20 s) can end: only the release can wake it, whatever the real time it takes.
    await ip.server.longPollsOpen("dict", 1);
    const start = clock.now();
    await first.release();
    expect(first.held).toBe(false);
    expect(first.signal.aborted).toBe(true);
    const second = await waiting;
    expect(second.token).toBeGreaterThan(first.token);
    expect(clock.now()).toBe(start);
    // Releasing twice is harmless; a later lock of another key does not wait.
    await first.release();
    await using third = await d.lock("other-key", { waitMs: 0 });
    expect(third.held).toBe(true);
    await second.release();
  });

  it("locks are per key, work with await using, and tokens stay monotonic across kill -9", async () => {
    const d = await fx.silo.dicts.fromName("restart", { createIfMissing: true });
    let last: number;
    {
      await using a = await d.lock(["composite", 1]);
      await using b = await d.lock(new Map([["k", 1]]), { waitMs: 0 });
      expect(b.token).toBeGreaterThan(a.token);
      last = b.token;
    }
    // Released by `await using`: free again without waiting.
    const again = await d.lock(["composite", 1], { waitMs: 0 });
    expect(again.token).toBeGreaterThan(last);
    last = again.token;
    await fx.server.restart("SIGKILL");
    await using fresh = fx.server.client();
    const after = await fresh.dicts.fromName("restart");
    // The lease survived the restart (it is in LMDB) until its TTL; a new key gets a larger token.
    await expect(after.lock(["composite", 1], { waitMs: 0 })).rejects.toBeInstanceOf(ConflictError);
    const next = await after.lock("new-key", { waitMs: 0 });
    expect(next.token).toBeGreaterThan(last);
    await next.release();
    await fx.silo.close();
    fx.silo = fx.server.client();
  });

  it("a waiter whose caller aborts stops waiting and is never granted the lock", async () => {
    const d = await ip.silo.dicts.fromName("abort", { createIfMissing: true });
    const held = await d.lock("k", { ttlMs: 10_000 });
    const abort = new AbortController();
    const waiting = d.lock("k", { waitMs: 20_000, signal: abort.signal });
    await ip.server.longPollsOpen("dict", 1);
    abort.abort();
    await expect(waiting).rejects.toThrow();
    // The server stops waiting once it sees the caller gone (the disconnect reaches it after the
    // client's own rejection, later still on a loaded machine); then the lock is released.
    await ip.server.longPollsOpen("dict", 0);
    await held.release();
    // Had the aborted waiter been handed the lock, this would be refused.
    await using next = await d.lock("k", { waitMs: 0 });
    expect(next.token).toBeGreaterThan(held.token);
  });

  it("a waiter that gives up gets ConflictError and leaves no lock behind", async () => {
    // The client's own deadline (real time) ends the wait: this runs against the real server.
    const d = await fx.silo.dicts.fromName("timeout", { createIfMissing: true });
    const held = await d.lock("k", { ttlMs: 10_000 });
    await expect(d.lock("k", { waitMs: 300 })).rejects.toThrow(/held by another holder/);
    await held.release();
    await using after = await d.lock("k", { waitMs: 0 });
    expect(after.held).toBe(true);
  });
});
