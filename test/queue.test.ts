import { describe, expect, it } from "vitest";
import {
  InvalidError,
  NoSpaceError,
  NotFoundError,
  type Queue,
  QueueEmptyError,
  QueueFullError,
  TooLargeError,
} from "../client/index.js";
import { eventually } from "./helpers/eventually.js";
import { InProcessServer, inProcessFixture } from "./helpers/in-process-server.js";
import { siloServerFixture } from "./helpers/silo-server.js";

let counter = 0;
/** A fresh named queue per test, so tests never see each other's items. */
const fresh = <T = unknown>() => fx.silo.queues.fromName<T>(`q-${process.pid}-${++counter}`, { createIfMissing: true });
/** The same on the in-process server. */
const freshIp = <T = unknown>() => ip.silo.queues.fromName<T>(`q-${process.pid}-${++counter}`, { createIfMissing: true });

/** A real `silo serve`: timeouts here are the client's own deadlines, on real time. */
const fx = siloServerFixture();
/**
 * The server in this process on a TestClock: a waiting call sets a timer on that clock, so
 * `timersPending` tells when the server holds a waiter, and partition TTLs pass when time is advanced.
 */
const ip = inProcessFixture();

/** Resolves once the in-process server holds `n` more waiters than when `before` was read. */
const waiters = (before: number, n = 1) => ip.server.timersPending(before, n);

describe("put and get", () => {
  it("is FIFO and round-trips msgpack values of many types", async () => {
    const q = await fresh();
    const values = [
      "text",
      42,
      -1.5,
      null,
      true,
      [1, [2, 3]],
      { nested: { a: [new Date(5)] } },
      new Date("2026-01-02T03:04:05.678Z"),
      new Map<unknown, unknown>([[1, "one"], ["k", { x: 1 }]]),
      new Set([1, "two"]),
      12345678901234567890n,
      new Uint8Array([0, 1, 255]),
      "é🚀",
    ];
    for (const v of values) await q.put(v);
    expect(await q.len()).toBe(values.length);
    const out = [];
    for (let i = 0; i < values.length; i++) out.push(await q.get());
    expect(out).toEqual(values);
    expect(await q.len()).toBe(0);
  });

  it("non-blocking get on an empty queue returns undefined at once; getMany returns []", async () => {
    const q = await fresh();
    expect(await q.get({ block: false })).toBeUndefined();
    expect(await q.getMany(5, { block: false })).toEqual([]);
  });

  it("a blocking get times out with QueueEmptyError", async () => {
    const q = await fresh();
    const started = Date.now();
    await expect(q.get({ timeoutMs: 300 })).rejects.toBeInstanceOf(QueueEmptyError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await expect(q.getMany(3, { timeoutMs: 0 })).rejects.toBeInstanceOf(QueueEmptyError);
  });

  it("a blocking get is woken by a put, and waiting getters are served first come first served", async () => {
    const q = await freshIp<number>();
    await using other = ip.server.client();
    const q2 = await other.queues.fromName<number>(q.name!);
    const before = ip.server.clock.pending;
    const first = q.get({ timeoutMs: 10_000 });
    await waiters(before);
    const second = q2.get({ timeoutMs: 10_000 });
    await waiters(before, 2);
    await q.putMany([1, 2]);
    expect(await first).toBe(1);
    expect(await second).toBe(2);
  });

  it("getMany returns up to n items and blocks only until at least one is there", async () => {
    const q = await freshIp<number>();
    await q.putMany([1, 2, 3]);
    expect(await q.getMany(2)).toEqual([1, 2]);
    expect(await q.getMany(10)).toEqual([3]);
    // Served items are leased until confirmed (a timer each): settle first, so only the wait below is counted.
    await q.settle();
    const before = ip.server.clock.pending;
    const waiting = q.getMany(10, { timeoutMs: 10_000 });
    await waiters(before);
    await q.putMany([4, 5, 6]);
    expect(await waiting).toEqual([4, 5, 6]);
  });

  it("concurrent default calls from one handle are coalesced without losing or duplicating items", async () => {
    const q = await fresh<number>();
    await Promise.all(Array.from({ length: 200 }, (_, i) => q.put(i)));
    const got = await Promise.all(Array.from({ length: 200 }, () => q.get()));
    expect([...got].sort((a, b) => a! - b!)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(await q.len()).toBe(0);
  });

  it("putMany of nothing is a no-op; getMany needs n >= 1", async () => {
    const q = await fresh();
    await q.putMany([]);
    expect(await q.len()).toBe(0);
    await expect(q.getMany(0)).rejects.toBeInstanceOf(InvalidError);
  });
});

describe("partitions", () => {
  it("are independent FIFOs; the default partition is separate from all named ones", async () => {
    const q = await fresh();
    await q.put(0);
    await q.put(1, { partition: "foo" });
    await q.put(2, { partition: "bar" });
    expect(await q.get({ partition: "bar" })).toBe(2);
    expect(await q.len({ partition: "bar" })).toBe(0);
    expect(await q.len({ partition: "foo" })).toBe(1);
    expect(await q.len()).toBe(1);
    expect(await q.len({ total: true })).toBe(2);
    expect(await q.get({ block: false, partition: "bar" })).toBeUndefined();
    expect(await q.get()).toBe(0);
    expect(await q.get({ partition: "foo" })).toBe(1);
  });

  it("keys must be 1-64 bytes (UTF-8)", async () => {
    const q = await fresh();
    await q.put("ok", { partition: "é".repeat(32) }); // 64 bytes
    expect(await q.get({ partition: "é".repeat(32) })).toBe("ok");
    await expect(q.put(1, { partition: "" })).rejects.toBeInstanceOf(InvalidError);
    await expect(q.put(1, { partition: "é".repeat(33) })).rejects.toBeInstanceOf(InvalidError);
    await expect(q.get({ partition: "x".repeat(65) })).rejects.toBeInstanceOf(InvalidError);
    await expect(q.len({ partition: "" })).rejects.toBeInstanceOf(InvalidError);
  });

  it("contradictory options are InvalidError", async () => {
    const q = await fresh();
    await expect(q.len({ partition: "a", total: true })).rejects.toBeInstanceOf(InvalidError);
    await expect(q.clear({ partition: "a", all: true })).rejects.toBeInstanceOf(InvalidError);
  });

  it("clear drops one partition, or all of them", async () => {
    const q = await fresh();
    await q.putMany([1, 2]);
    await q.putMany([3, 4], { partition: "a" });
    await q.putMany([5], { partition: "b" });
    await q.clear({ partition: "a" });
    expect(await q.len({ partition: "a" })).toBe(0);
    expect(await q.len({ total: true })).toBe(3);
    await q.clear();
    expect(await q.len()).toBe(0);
    expect(await q.len({ total: true })).toBe(1);
    await q.clear({ all: true });
    expect(await q.len({ total: true })).toBe(0);
    await q.put(6, { partition: "a" });
    expect(await q.get({ partition: "a" })).toBe(6);
  });
});

describe("limits", () => {
  it("an item over 1 MiB is TooLargeError and nothing of the batch is stored", async () => {
    const q = await fresh();
    await q.put(new Uint8Array(1024 * 1024 - 64));
    await expect(q.putMany([1, new Uint8Array(1024 * 1024 + 1)])).rejects.toBeInstanceOf(TooLargeError);
    expect(await q.len()).toBe(1);
  });

  it("a partition holds 5,000 items: non-blocking put fails at once, blocking put times out", async () => {
    const q = await fresh<number>();
    await q.putMany(Array.from({ length: 4_990 }, (_, i) => i));
    // putMany is atomic: 20 items do not fit, so none is added.
    await expect(q.putMany(Array.from({ length: 20 }, () => -1), { block: false })).rejects.toBeInstanceOf(QueueFullError);
    expect(await q.len()).toBe(4_990);
    await q.putMany(Array.from({ length: 10 }, (_, i) => 4_990 + i));
    await expect(q.put(-1, { block: false })).rejects.toBeInstanceOf(QueueFullError);
    await expect(q.put(-1, { timeoutMs: 200 })).rejects.toBeInstanceOf(QueueFullError);
    // Other partitions are not affected.
    await q.put(7, { partition: "other" });
    await expect(q.putMany(Array.from({ length: 5_001 }, () => 0))).rejects.toBeInstanceOf(TooLargeError);
  });

  it("a put blocked on a full partition goes in as soon as a get makes room", async () => {
    const q = await freshIp<number>();
    await q.putMany(Array.from({ length: 5_000 }, (_, i) => i));
    const before = ip.server.clock.pending;
    const blocked = q.put(5_000, { timeoutMs: 10_000 });
    await waiters(before);
    expect(await q.len()).toBe(5_000);
    expect(await q.get()).toBe(0);
    await blocked;
    expect(await q.len()).toBe(5_000);
    const all = await q.getMany(5_000);
    expect(all[0]).toBe(1);
    expect(all.at(-1)).toBe(5_000);
  });

  it("the server enforces the limits itself (raw HTTP, no client checks)", async () => {
    const q = await fresh();
    const call = (body: unknown) =>
      fetch(`${fx.server.url}/v1/queues/${q.id}/put`, {
        method: "POST",
        headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } }));
    const b64 = (n: number) => Buffer.alloc(n).toString("base64");
    expect((await call({ items: [b64(1024 * 1024 + 1)] })).body.error?.code).toBe("TOO_LARGE");
    expect((await call({ items: [b64(1)], partition: "x".repeat(65) })).body.error?.code).toBe("INVALID");
    expect((await call({ items: Array.from({ length: 5_001 }, () => b64(1)) })).body.error?.code).toBe("TOO_LARGE");
    expect((await call({ items: [b64(1)], block: false })).status).toBe(200);
    expect(await q.len()).toBe(1);
  });
});

describe("iterate, peek and info", () => {
  it("iterate reads in order without removing, and waits itemPollTimeoutMs for more", async () => {
    const q = await fresh<number>();
    await q.putMany([1, 2, 3]);
    const seen: number[] = [];
    for await (const v of q.iterate()) seen.push(v);
    expect(seen).toEqual([1, 2, 3]);
    expect(await q.len()).toBe(3);

    // The iterator has read what there was; the next item arrives while it polls for more. The
    // window is far longer than a put takes on a loaded machine (a 1 s window raced the put);
    // the consumer stops at the item it waited for.
    const later: number[] = [];
    const done = (async () => {
      for await (const v of q.iterate({ itemPollTimeoutMs: 120_000 })) {
        later.push(v);
        if (v === 4) break;
      }
    })();
    await eventually(() => expect(later).toHaveLength(3), 10_000, 5);
    await q.put(4);
    await done;
    expect(later).toEqual([1, 2, 3, 4]);
    // With nothing more arriving, an iterator ends once its window has passed.
    const ended: number[] = [];
    for await (const v of q.iterate({ itemPollTimeoutMs: 200 })) ended.push(v);
    expect(ended).toEqual([1, 2, 3, 4]);
    expect(await q.peek(2)).toEqual([1, 2]);
    expect(await q.len()).toBe(4);
  });

  it("iterate over a partition sees only that partition, and skips items taken before it fetched them", async () => {
    const q = await fresh<number>();
    await q.putMany([1, 2], { partition: "p" });
    await q.put(99);
    const seen: number[] = [];
    for await (const v of q.iterate({ partition: "p", itemPollTimeoutMs: 500 })) {
      seen.push(v);
      if (v === 2) {
        await q.putMany([3, 4, 5], { partition: "p" });
        expect(await q.getMany(3, { partition: "p" })).toEqual([1, 2, 3]);
      }
    }
    expect(seen).toEqual([1, 2, 4, 5]);
  });

  it("info reports names and counts", async () => {
    const q = await fresh();
    await q.putMany([1, 2]);
    await q.put(3, { partition: "a" });
    const info = await q.info();
    expect(info).toMatchObject({ id: q.id, name: q.name, environment: "main", totalItems: 3, partitions: 2 });
    expect(info.createdAt).toBeInstanceOf(Date);
  });
});

describe("named and ephemeral queues", () => {
  it("fromName without createIfMissing is NotFoundError; objects.list and delete work", async () => {
    await expect(fx.silo.queues.fromName("never-made")).rejects.toBeInstanceOf(NotFoundError);
    await fx.silo.queues.objects.create("listed");
    const names = (await fx.silo.queues.objects.list()).map((q) => q.name);
    expect(names).toContain("listed");
    const q = await fx.silo.queues.fromName("listed");
    await q.put(1);
    await fx.silo.queues.delete("listed");
    await expect(fx.silo.queues.fromName("listed")).rejects.toBeInstanceOf(NotFoundError);
    await expect(q.put(1)).rejects.toBeInstanceOf(NotFoundError);
    // A new queue of the same name starts empty: the old items were purged.
    const again = await fx.silo.queues.fromName("listed", { createIfMissing: true });
    expect(await again.len({ total: true })).toBe(0);
  });

  it("deleting a queue fails the gets waiting on it with NotFoundError", async () => {
    const q = await ip.silo.queues.fromName("doomed", { createIfMissing: true });
    const before = ip.server.clock.pending;
    const failed = expect(q.get({ timeoutMs: 10_000 })).rejects.toBeInstanceOf(NotFoundError);
    await waiters(before);
    await ip.silo.queues.delete("doomed");
    await failed;
  });

  it("an ephemeral queue works under `await using` and is gone afterwards", async () => {
    let handle: Queue<string> | undefined;
    {
      await using q = await fx.silo.queues.ephemeral<string>();
      handle = q;
      await q.put("x");
      expect(await q.get()).toBe("x");
      expect(q.name).toBeNull();
    }
    await expect(handle.len()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("another environment or workspace cannot see or use the queue", async () => {
    const q = await fresh();
    await q.put("secret");
    await fx.silo.environments.create("qdev");
    await using dev = fx.server.client({ environment: "qdev" });
    await expect(dev.queues.fromName(q.name!)).rejects.toBeInstanceOf(NotFoundError);
    expect((await dev.queues.objects.list()).map((x) => x.name)).not.toContain(q.name);

    const ws = await fx.silo.workspaces.create("queue-tenant");
    await using tenant = fx.server.client({ tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    await expect(tenant.queues.fromName(q.name!)).rejects.toBeInstanceOf(NotFoundError);
    // Even knowing the id does not help: the data routes resolve ids in the caller's namespace.
    for (const token of [{ id: ws.tokenId, secret: ws.tokenSecret, env: "main" }, { id: fx.server.profile.tokenId, secret: fx.server.profile.tokenSecret, env: "qdev" }]) {
      const res = await fetch(`${fx.server.url}/v1/queues/${q.id}/get`, {
        method: "POST",
        headers: { authorization: `Bearer ${token.id}:${token.secret}`, "content-type": "application/json", "x-silo-environment": token.env },
        body: JSON.stringify({ block: false }),
      });
      expect(res.status).toBe(404);
    }
    expect(await q.get()).toBe("secret");
  });
});

describe("partition TTL", () => {
  it("a partition expires partitionTtlMs after its last put; each put renews it; others are unaffected", async () => {
    const { clock } = ip.server;
    const q = await freshIp();
    await q.put("short", { partition: "t", partitionTtlMs: 1_000 });
    await q.put("long");
    await clock.advance(500);
    await q.put("renewed", { partition: "t", partitionTtlMs: 1_000 });
    await clock.advance(999);
    expect(await q.len({ partition: "t" })).toBe(2); // 1.499 s after the first put, 0.999 s after the last
    await clock.advance(1);
    expect(await q.len({ partition: "t" })).toBe(0);
    expect(await q.get({ block: false, partition: "t" })).toBeUndefined();
    expect(await q.get({ block: false })).toBe("long");
    // An expired partition starts over.
    await q.put("fresh", { partition: "t" });
    expect(await q.get({ partition: "t" })).toBe("fresh");
  });

  it("the server's default TTL and partition limit are options (--queue-partition-ttl-ms, --queue-max-partitions)", async () => {
    const small = await InProcessServer.start({ queuePartitionTtlMs: 1000, queueMaxPartitions: 3 });
    try {
      await using client = small.client();
      const q = await client.queues.fromName("small", { createIfMissing: true });
      await q.put(1);
      await q.put(2, { partition: "a" });
      await q.put(3, { partition: "b", partitionTtlMs: 60_000 });
      await expect(q.put(4, { partition: "c" })).rejects.toBeInstanceOf(NoSpaceError);
      await q.put(5, { partition: "a" }); // an existing partition still takes items
      expect(await q.get({ partition: "a" })).toBe(2);
      await small.clock.advance(1_000);
      // The default partition and "a" expired with the default TTL; "b" asked for longer.
      expect(await q.len({ total: true })).toBe(1);
      await q.put(4, { partition: "c" }); // room again for a new partition
      expect((await q.info()).partitions).toBe(2);
    } finally {
      await small.cleanup();
    }
  });
});

describe("CLI", () => {
  it("create, list, len, peek, clear and delete", async () => {
    expect((await fx.server.cli(["queue", "create", "cli-q"])).code).toBe(0);
    expect((await fx.server.cli(["queue", "create", "cli-q"])).code).toBe(0); // a no-op when it exists
    const q = await fx.silo.queues.fromName<unknown>("cli-q");
    await q.putMany([{ a: 1 }, "two", 3]);
    await q.putMany([4, 5], { partition: "p" });

    const list = await fx.server.cli(["queue", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ name: "cli-q", totalItems: 5, partitions: 2 })]));
    expect((await fx.server.cli(["queue", "list"])).stdout).toContain("cli-q");

    expect((await fx.server.cli(["queue", "len", "cli-q"])).stdout.trim()).toBe("3");
    expect((await fx.server.cli(["queue", "len", "cli-q", "-p", "p"])).stdout.trim()).toBe("2");
    expect((await fx.server.cli(["queue", "len", "cli-q", "--total"])).stdout.trim()).toBe("5");
    const bad = await fx.server.cli(["queue", "len", "cli-q", "-p", "p", "--total"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/contradict/);

    const peek = await fx.server.cli(["queue", "peek", "cli-q", "2"]);
    expect(peek.stdout.trim().split("\n")).toEqual(["{ a: 1 }", "'two'"]);
    expect(JSON.parse((await fx.server.cli(["queue", "peek", "cli-q", "-p", "p", "--json"])).stdout)).toEqual([4]);
    expect(await q.len()).toBe(3); // peek removes nothing

    const refused = await fx.server.cli(["queue", "clear", "cli-q"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--yes/);
    expect((await fx.server.cli(["queue", "clear", "cli-q", "-p", "p", "--yes"])).code).toBe(0);
    expect(await q.len({ total: true })).toBe(3);
    expect((await fx.server.cli(["queue", "clear", "cli-q", "--all", "-y"])).code).toBe(0);
    expect(await q.len({ total: true })).toBe(0);

    expect((await fx.server.cli(["queue", "delete", "cli-q", "--yes"])).code).toBe(0);
    const missing = await fx.server.cli(["queue", "delete", "cli-q", "--yes"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found/);
    expect((await fx.server.cli(["queue", "delete", "cli-q", "--yes", "--allow-missing"])).code).toBe(0);
    expect((await fx.server.cli(["queue", "len", "cli-q"])).stderr).toMatch(/not found/);
  });

  it("acts in the environment given by -e", async () => {
    await fx.silo.environments.create("cli-env");
    expect((await fx.server.cli(["-e", "cli-env", "queue", "create", "env-q"])).code).toBe(0);
    expect((await fx.server.cli(["queue", "list", "--json"])).stdout).not.toContain("env-q");
    expect((await fx.server.cli(["queue", "list", "--json", "-e", "cli-env"])).stdout).toContain("env-q");
  });
});
