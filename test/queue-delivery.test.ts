/**
 * The queue's delivery guarantee at every edge (docs/queues.md, "Delivery and durability"):
 * at-least-once with delivery leases. A get's items stay durably in flight until the client
 * library confirms receipt; a disconnect, a lost answer or a kill -9 never loses an
 * acknowledged item, and an item is served again only if its receipt was never confirmed.
 */
import { connect } from "node:net";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionError, NoSpaceError, QueueEmptyError, type SiloClient, UnavailableError } from "../client/index.js";
import { eventually } from "./helpers/eventually.js";
import { SiloServer } from "./helpers/silo-server.js";
import { SmallDisk } from "./helpers/tmpfs.js";

// The server reads this at start: it lets a request ask for its answer to be held.
process.env.SILO_TEST_HOOKS = "1";
const LEASE_MS = 1_000;
const envelope = new Packr({ useRecords: false });
const values = new Packr({ structuredClone: true });

interface RawGet {
  /** Resolves with the decoded items once a full answer arrived. */
  answer: Promise<{ status: number; items: unknown[]; lease: string | null }>;
  destroy(): void;
}

/** A get on a raw socket: the test decides when the connection dies, and nothing confirms it. */
function rawGet(server: SiloServer, queueId: string, request: object, headers: Record<string, string> = {}): RawGet {
  const url = new URL(server.url);
  const body = envelope.pack(request);
  const socket = connect(Number(url.port), url.hostname);
  socket.on("error", () => undefined);
  const chunks: Buffer[] = [];
  const answer = new Promise<{ status: number; items: unknown[]; lease: string | null }>((resolve, reject) => {
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf("\r\n\r\n");
      if (split < 0) return;
      const head = raw.subarray(0, split).toString();
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? -1);
      if (raw.length - split - 4 < length) return;
      const status = Number(head.split(" ")[1]);
      const reply = envelope.unpack(raw.subarray(split + 4, split + 4 + length)) as { items?: Buffer[]; lease?: string | null };
      resolve({ status, items: (reply.items ?? []).map((i) => values.unpack(i)), lease: reply.lease ?? null });
    });
    socket.on("close", () => reject(new Error("closed before a full answer")));
  });
  answer.catch(() => undefined);
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  socket.write(
    `POST /v1/queues/${queueId}/get HTTP/1.1\r\nHost: ${url.host}\r\n` +
      `Authorization: Bearer ${server.profile.tokenId}:${server.profile.tokenSecret}\r\n${extra}` +
      `Content-Type: application/msgpack\r\nAccept: application/msgpack\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body);
  return { answer, destroy: () => socket.destroy() };
}

describe("delivery leases", () => {
  let server: SiloServer;
  let silo: SiloClient;
  beforeAll(async () => {
    // A fixed port: clients (and their pending confirmations) reach the server again after a kill -9.
    server = await SiloServer.start(["--queue-lease-ms", String(LEASE_MS)]);
    silo = server.client();
  });
  afterAll(async () => {
    await silo?.close();
    await server?.cleanup();
  });

  it("a client that disconnects while its answer is held: the items are back at the head at once, in order", async () => {
    const q = await silo.queues.fromName<string>("held", { createIfMissing: true });
    await q.putMany(["a", "b", "c"]);
    // Held for a minute after the lease is durable: only the disconnect can end it.
    const get = rawGet(server, q.id, { n: 2, block: false }, { "x-silo-test-hold-answer-ms": "60000" });
    await eventually(async () => expect((await q.info()).inFlight).toBe(2));
    expect(await q.len()).toBe(1);
    get.destroy();
    await eventually(async () => expect(await q.len()).toBe(3), 5_000, 20);
    expect((await q.info()).inFlight).toBe(0);
    expect(await q.getMany(3)).toEqual(["a", "b", "c"]);
  });

  it("an answer that reached a client which never confirmed: its items come back after the lease, at the head", async () => {
    const q = await silo.queues.fromName<string>("unconfirmed", { createIfMissing: true });
    await q.putMany(["x", "y", "z"]);
    const get = rawGet(server, q.id, { n: 2, block: false });
    const { status, items, lease } = await get.answer;
    expect([status, items]).toEqual([200, ["x", "y"]]);
    expect(lease).toMatch(/^lease-/);
    get.destroy();
    expect((await q.info()).inFlight).toBe(2);
    expect(await q.getMany(3, { block: false })).toEqual(["z"]);
    await q.put("w");
    // The duplicate window: the same items are served again, ahead of later ones, once the lease ran out.
    await eventually(async () => expect((await q.info()).inFlight).toBe(0), 10 * LEASE_MS);
    expect(await q.getMany(3, { block: false })).toEqual(["x", "y", "w"]);
  });

  it("a confirmed get is never served again, also after kill -9; an unconfirmed lease survives kill -9 and returns", async () => {
    const q = await silo.queues.fromName<number>("kill-leases", { createIfMissing: true });
    await q.putMany([1, 2, 3, 4]);
    expect(await q.getMany(2)).toEqual([1, 2]);
    expect(await q.settle()).toEqual({ confirmed: 1, late: 0 });
    const raw = rawGet(server, q.id, { n: 1, block: false });
    expect((await raw.answer).items).toEqual([3]);
    raw.destroy();
    await server.restart("SIGKILL");
    const after = await silo.queues.fromName<number>("kill-leases");
    // 3 is in flight (or back already, if the restart took longer than its lease)...
    const { totalItems, inFlight } = await after.info();
    expect(totalItems + inFlight).toBe(2);
    // ...and comes back (at the head) when its lease, kept on disk, runs out; 1 and 2 never do.
    await eventually(async () => expect((await after.info()).inFlight).toBe(0), 10 * LEASE_MS);
    expect(await after.getMany(10, { block: false })).toEqual([3, 4]);
    await expect(after.get({ timeoutMs: 3 * LEASE_MS })).rejects.toBeInstanceOf(QueueEmptyError);
  });

  it("clear drops items in flight too: they do not come back after the lease", async () => {
    const q = await silo.queues.fromName<number>("clear-leased", { createIfMissing: true });
    await q.putMany([1, 2]);
    const raw = rawGet(server, q.id, { n: 1, block: false });
    expect((await raw.answer).items).toEqual([1]);
    raw.destroy();
    await q.clear();
    expect((await q.info()).inFlight).toBe(0);
    await expect(q.get({ timeoutMs: 3 * LEASE_MS })).rejects.toBeInstanceOf(QueueEmptyError);
  });

  it("kill -9 campaign: 20+ kills at random points lose no acknowledged item; an item is served again only if its receipt was never confirmed", async () => {
    const KILLS = 20;
    const q = await silo.queues.fromName<number>("campaign", { createIfMissing: true });
    const acked = new Set<number>();
    const attempted = new Set<number>();
    const deliveries = new Map<number, number>();
    /** Deliveries an item had when its receipt was confirmed: it must never get another. */
    const confirmedAt = new Map<number, number>();
    const violations: string[] = [];
    let events = 0;
    let next = 0;
    let running = true;
    let up: Promise<void> = Promise.resolve();
    const deliver = (id: number) => {
      const n = (deliveries.get(id) ?? 0) + 1;
      deliveries.set(id, n);
      if (confirmedAt.has(id)) violations.push(`item ${id} served again after its receipt was confirmed`);
      return n;
    };
    const transient = (err: unknown) => err instanceof ConnectionError || err instanceof UnavailableError;

    const producer = (async () => {
      while (running) {
        const ids = Array.from({ length: 1 + (next % 7) }, () => next++);
        ids.forEach((id) => attempted.add(id));
        try {
          await q.putMany(ids);
          ids.forEach((id) => acked.add(id));
          events++;
        } catch (err) {
          if (!transient(err)) throw err;
          await up;
        }
      }
    })();
    const consumer = (async () => {
      while (running) {
        try {
          const items = await q.getMany(1 + (events % 9), { timeoutMs: 2_000 });
          const seen = items.map((id) => [id, deliver(id)] as const);
          events++;
          const outcome = await q.settle();
          // Confirmed for sure only if every confirmation took; a late one means served again.
          if (outcome.late === 0) for (const [id, n] of seen) confirmedAt.set(id, n);
        } catch (err) {
          if (err instanceof QueueEmptyError) continue;
          if (!transient(err)) throw err;
          await up;
        }
      }
    })();

    for (let kill = 0; kill < KILLS; kill++) {
      // Kill after a random number of completed operations, so kills land anywhere in the cycle.
      const target = events + 1 + Math.floor(Math.random() * 12);
      await eventually(() => expect(events).toBeGreaterThanOrEqual(target), 30_000, 5);
      let done!: () => void;
      up = new Promise((r) => (done = r));
      await server.restart("SIGKILL");
      done();
    }
    running = false;
    await Promise.all([producer, consumer]);
    await q.settle();

    // Everything in flight at the last kill comes back once its lease runs out; then drain.
    await eventually(async () => expect((await q.info()).inFlight).toBe(0), 10 * LEASE_MS);
    for (;;) {
      const items = await q.getMany(1000, { block: false });
      if (items.length === 0) break;
      items.forEach(deliver);
    }
    await q.settle();

    const lost = [...acked].filter((id) => !deliveries.has(id));
    const unknown = [...deliveries.keys()].filter((id) => !attempted.has(id));
    const duplicates = [...deliveries.values()].filter((n) => n > 1).length;
    console.log(`kill -9 campaign: ${KILLS} kills, ${acked.size} acknowledged items, ${deliveries.size} delivered, ${duplicates} served more than once`);
    expect(violations).toEqual([]);
    expect(lost).toEqual([]);
    expect(unknown).toEqual([]);
    expect(acked.size).toBeGreaterThan(KILLS);
  }, 300_000);
});

describe("a failed put is never visible", () => {
  let disk: SmallDisk;
  let server: SiloServer | undefined;
  beforeAll(async () => {
    disk = SmallDisk.mount(48 * 1024 * 1024);
    server = new SiloServer(mkdtempSync(join(disk.dir, "home-")));
    await server.launch();
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
    disk?.unmount();
  });

  it("on a full disk a put answers NoSpaceError and its item is not in len, not served, not back after a restart", async () => {
    const silo = server!.client();
    const q = await silo.queues.fromName<string>("full", { createIfMissing: true });
    await q.put("before");
    const waiting = q.getMany(10, { timeoutMs: 20_000, partition: "w" }); // a waiting getter must not receive it either
    disk.fill();
    const big = "x".repeat(900 * 1024); // needs fresh pages: no free page inside LMDB's file can take it
    await expect(q.put(big)).rejects.toBeInstanceOf(NoSpaceError);
    await expect(q.put(big, { partition: "w" })).rejects.toBeInstanceOf(NoSpaceError);
    expect(await q.len()).toBe(1);
    expect(await q.len({ partition: "w" })).toBe(0);
    expect(await q.peek(5)).toEqual(["before"]);
    disk.free();
    await q.put("after", { partition: "w" });
    expect(await waiting).toEqual(["after"]);
    await server!.restart("SIGKILL");
    const again = server!.client();
    const q2 = await again.queues.fromName<string>("full");
    expect(await q2.getMany(10, { block: false })).toEqual(["before"]);
    expect(await q2.len({ total: true })).toBe(0);
    await again.close();
    await silo.close();
  });
});
