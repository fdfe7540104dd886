import { spawn } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import { UnavailableError } from "../client/index.js";
import { eventually } from "./helpers/eventually.js";
import { inProcessFixture } from "./helpers/in-process-server.js";
import { REPO, siloServerFixture } from "./helpers/silo-server.js";

const WORKER = join(REPO, "test/helpers/queue-worker.mjs");

/** A real `silo serve` (many processes, kill -9). */
const fx = siloServerFixture();
/** The server in this process on a TestClock: every waiting call is a timer on it, so tests see who waits. */
const ip = inProcessFixture();
const waiters = (before: number, n = 1) => ip.server.timersPending(before, n);

/** Runs the queue worker in its own process; resolves with its stdout, rejects if it fails. */
function worker(mode: string, queue: string, args: unknown, env: NodeJS.ProcessEnv = fx.server.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [WORKER, mode, queue, JSON.stringify(args)], { env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    proc.stdout.on("data", (d: Buffer) => out.push(d));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.on("error", reject);
    proc.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new Error(`worker ${mode} exited ${code}: ${err}`))));
  });
}

interface Item {
  p: number;
  k: number;
  part: string;
}

describe("many producer and consumer processes", () => {
  it("4 producers x 4 consumers x 10,000 items: every item exactly once, FIFO per partition", async () => {
    const PRODUCERS = 4;
    const PER_PRODUCER = 10_000;
    const partitions = ["", "a", "b"];
    await fx.silo.queues.objects.create("mpmc");
    const consumers = Array.from({ length: 4 }, () => worker("consume", "mpmc", { partitions }));
    await Promise.all(Array.from({ length: PRODUCERS }, (_, producer) => worker("produce", "mpmc", { producer, count: PER_PRODUCER, partitions, chunk: 100 })));
    const q = await fx.silo.queues.fromName("mpmc");
    await q.put("all produced", { partition: "done" });
    const received = (await Promise.all(consumers)).map((out) => JSON.parse(out) as Item[]);

    // Exactly once: every (producer, k) appears once over all consumers, nothing else appears.
    const seen = new Set<string>();
    for (const item of received.flat()) {
      const id = `${item.p}/${item.k}`;
      expect(seen.has(id), `duplicate ${id}`).toBe(false);
      seen.add(id);
    }
    expect(seen.size).toBe(PRODUCERS * PER_PRODUCER);
    // FIFO per partition: each consumer takes items one request after another, so what it got
    // from one producer in one partition must be in that producer's order.
    for (const items of received) {
      const last = new Map<string, number>();
      for (const { p, k, part } of items) {
        const key = `${p}/${part}`;
        expect(k, `out of order in ${key}`).toBeGreaterThan(last.get(key) ?? -1);
        last.set(key, k);
      }
      expect(items.length).toBeGreaterThan(0);
    }
    expect(await q.len({ total: true })).toBe(1); // just the "done" marker
  });

  it("a blocking get is woken by a put from another process", async () => {
    const q = await ip.silo.queues.fromName("wake", { createIfMissing: true });
    const before = ip.server.clock.pending;
    const waiting = q.get({ partition: "w" });
    await waiters(before);
    await worker("put", "wake", { value: { from: "another process" }, partition: "w" }, ip.server.env);
    expect(await waiting).toEqual({ from: "another process" });
  });
});

describe("a waiting client that disconnects", () => {
  const envelope = new Packr({ useRecords: false });

  /** Sends a get on a raw socket, so the test decides exactly when the connection dies. */
  async function rawGet(queueId: string, request: object) {
    const url = new URL(ip.server.url);
    const body = envelope.pack(request);
    const socket = connect(Number(url.port), url.hostname);
    const received: Buffer[] = [];
    socket.on("data", (d: Buffer) => received.push(d));
    socket.on("error", () => undefined);
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    await new Promise((r) => socket.once("connect", r));
    socket.write(
      `POST /v1/queues/${queueId}/get HTTP/1.1\r\nHost: ${url.host}\r\n` +
        `Authorization: Bearer ${ip.server.profile.tokenId}:${ip.server.profile.tokenSecret}\r\n` +
        `Content-Type: application/msgpack\r\nAccept: application/msgpack\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    socket.write(body);
    return {
      close: () => socket.destroy(),
      /** Closes our sending side only, so an answer the server already wrote still reaches us. */
      halfClose: () => socket.end(),
      answered: () => received.length > 0,
      /** Resolves once the connection is closed on both sides (the server answered or dropped it). */
      closed,
      /** The values of a 200 answer (msgpack-encoded items), or [] if the server answered nothing. */
      items: (): unknown[] => {
        const raw = Buffer.concat(received);
        const split = raw.indexOf("\r\n\r\n");
        if (split < 0 || !raw.subarray(0, 12).toString().includes(" 200")) return [];
        const { items } = envelope.unpack(raw.subarray(split + 4)) as { items: Buffer[] };
        return items.map((i) => envelope.unpack(i));
      },
    };
  }

  it("leaves the wait list, so the next put's item is not swallowed", async () => {
    const q = await ip.silo.queues.fromName("vanishing", { createIfMissing: true });
    const before = ip.server.clock.pending;
    const gets = await Promise.all(Array.from({ length: 5 }, () => rawGet(q.id, { n: 1, block: true, timeoutMs: 30_000 })));
    await waiters(before, 5);
    for (const w of gets) w.close();
    // Each waiter that leaves cancels its timer.
    await eventually(() => expect(ip.server.clock.pending).toBe(before), 10_000, 5);
    await q.putMany(["kept", "also kept"]);
    expect(gets.some((w) => w.answered())).toBe(false);
    expect(await q.len()).toBe(2);
    expect(await q.getMany(2)).toEqual(["kept", "also kept"]);
  });

  it("a getter that disconnects around its answer swallows nothing: every item is received or back at the head", async () => {
    const q = await ip.silo.queues.fromName<number>("given-back", { createIfMissing: true });
    await q.putMany([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const received: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      // Request and hang up in one go. Whichever side wins the race, the server either answered
      // (and the items reached us) or saw the hang-up first and put the items back at the head.
      const w = await rawGet(q.id, { n: 2, block: false });
      w.halfClose();
      await w.closed;
      received.push(...w.items());
    }
    const remaining = await q.getMany(10, { block: false });
    expect([...received, ...remaining].sort((a, b) => Number(a) - Number(b))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(remaining).toEqual([...remaining].sort((a, b) => Number(a) - Number(b)));
  });
});

describe("server shutdown", () => {
  it("ends waiting calls with UnavailableError instead of holding the shutdown for a minute", async () => {
    // In-process on a TestClock the wait never times out by itself: without the wake-up the shutdown would hang.
    await using client = ip.server.client();
    const q = await client.queues.fromName("shutdown", { createIfMissing: true });
    const before = ip.server.clock.pending;
    const failed = expect(q.get({ timeoutMs: 55_000 })).rejects.toBeInstanceOf(UnavailableError);
    await waiters(before);
    await ip.server.restart();
    await failed;
    await ip.silo.close();
    ip.silo = ip.server.client();
  });
});

describe("durability", () => {
  it("acknowledged puts and gets survive kill -9 of the server, in order", async () => {
    await using client = fx.server.client();
    const q = await client.queues.fromName<number>("durable", { createIfMissing: true });
    await q.putMany(Array.from({ length: 100 }, (_, i) => i));
    await Promise.all(Array.from({ length: 50 }, (_, i) => q.put(100 + i, { partition: "p", partitionTtlMs: 3_600_000 })));
    expect(await q.getMany(10)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    // The get's receipt is confirmed on disk: those 10 are gone for good (unconfirmed, they would come back).
    expect(await q.settle()).toEqual({ confirmed: 1, late: 0 });

    await fx.server.restart("SIGKILL");
    await using after = fx.server.client();
    const again = await after.queues.fromName<number>("durable");
    expect(await again.len()).toBe(90);
    expect(await again.len({ total: true })).toBe(140);
    expect(await again.getMany(100)).toEqual(Array.from({ length: 90 }, (_, i) => 10 + i));
    expect((await again.getMany(100, { partition: "p" })).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    // New puts continue after the recovered tail.
    await again.putMany([1, 2]);
    expect(await again.getMany(5)).toEqual([1, 2]);
  });
});
