import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../test/helpers/eventually.js";
import { SEND_CHUNK, type SendPart, sendParts } from "./send-file.js";

const dir = mkdtempSync(join(tmpdir(), "silo-send-file-"));
// More than loopback's socket buffers take, so a reader that stops leaves writes queued in the server.
const data = randomBytes(40 * SEND_CHUNK + 123);
const file = join(dir, "blob");
writeFileSync(file, data);

let app: FastifyInstance;
let url: string;
/** The file handles the routes opened, and each send's end (resolved when the handler returned). */
const opened: FileHandle[] = [];
const sends: Promise<void>[] = [];
/** The server's side of each response. */
const responses: ServerResponse[] = [];

async function filePart(start: number, end: number): Promise<SendPart> {
  const fh = await open(file, "r");
  opened.push(fh);
  return { fh, start, end };
}

beforeAll(async () => {
  app = Fastify();
  // The whole file, in three parts: bytes at hand, a file range, the rest of the file.
  app.get("/file", async (_req, reply) => {
    async function* parts(): AsyncGenerator<SendPart> {
      yield data.subarray(0, 100);
      yield await filePart(100, 3 * SEND_CHUNK);
      yield await filePart(3 * SEND_CHUNK, data.length);
    }
    responses.push(reply.raw);
    const done = sendParts(reply, 200, { "content-type": "application/octet-stream" }, data.length, parts());
    sends.push(done);
    return done;
  });
  // Promises more bytes than the file holds.
  app.get("/short", async (_req, reply) => {
    async function* parts(): AsyncGenerator<SendPart> {
      yield await filePart(0, data.length + 10);
    }
    return sendParts(reply, 200, {}, data.length + 10, parts());
  });
  url = await app.listen({ port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A raw GET whose answer is left after `leaveAfter` bytes, or read only once `until` resolves
 * (the reader stops at the first bytes till then).
 */
function get(path: string, opts: { until?: Promise<void>; leaveAfter?: number } = {}): Promise<{ head: string; body: Buffer; cut: boolean }> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), "127.0.0.1");
    const chunks: Buffer[] = [];
    let got = 0;
    const finish = (cut: boolean) => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      resolve({ head: all.subarray(0, end).toString("latin1"), body: all.subarray(end + 4), cut });
    };
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (opts.leaveAfter !== undefined && got >= opts.leaveAfter) {
        sock.destroy();
        finish(true);
      } else if (opts.until && chunks.length === 1) {
        sock.pause();
        void opts.until.then(() => sock.resume());
      }
    });
    sock.on("end", () => finish(false));
    sock.on("error", () => finish(true));
    sock.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
  });
}

describe("sendParts", () => {
  it("sends every part's bytes in order with their length to a slow reader (no buffer refilled before the socket took it)", async () => {
    responses.length = 0;
    // The reader stops until writes wait in the server (the kernel's buffers are full): a buffer
    // refilled before its write went out would now change bytes still to be sent.
    const stalled = waitFor("writes queued in the server", () => (responses[0]?.writableLength ?? 0) > 0);
    const res = await get("/file", { until: stalled });
    expect(res.head).toMatch(/^HTTP\/1\.1 200/);
    expect(res.head).toContain(`content-length: ${data.length}`);
    expect(res.body.length).toBe(data.length);
    expect(res.body.equals(data)).toBe(true);
  });

  it("a client leaving mid-body ends the send and closes every file it opened", async () => {
    opened.length = 0;
    sends.length = 0;
    const res = await get("/file", { leaveAfter: SEND_CHUNK });
    expect(res.cut).toBe(true);
    await Promise.all(sends);
    expect(opened.length).toBeGreaterThan(0);
    // A closed FileHandle's fd is -1.
    for (const fh of opened) expect(fh.fd).toBe(-1);
  });

  it("a file shorter than promised cuts the connection: the client gets a short body, never padding", async () => {
    opened.length = 0;
    const res = await get("/short");
    expect(res.head).toContain(`content-length: ${data.length + 10}`);
    expect(res.body.length).toBeLessThan(data.length + 10);
    expect(res.body.equals(data.subarray(0, res.body.length))).toBe(true);
    for (const fh of opened) expect(fh.fd).toBe(-1);
  });
});
