/**
 * `silo volume get` of a large file receives its ranges straight into buffers over connections
 * of its own (client/buffer-connection.ts). Between the CLI and a real server sits a TCP relay
 * that misbehaves the way a broken proxy or a server closing idle connections would.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type Server, type Socket, connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { bytes } from "./helpers/volume-data.js";

/** What the relay does to a connection whose first request is a ranged read of a file. */
type Fault = "shift-ranges" | "one-request-per-connection";

/**
 * Relays TCP to `port`. "shift-ranges" rewrites a range read past the first byte into one of
 * the file's start (the answer then says so in its Content-Range); "one-request-per-connection"
 * closes a file-reading connection, unanswered, when a second request comes on it.
 */
async function relay(port: number, fault: Fault): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = connect(port, "127.0.0.1");
    sockets.add(down).add(up);
    let requests = 0;
    let fileReads = false;
    down.on("data", (chunk: Buffer) => {
      let head = chunk.toString("latin1");
      if (requests++ === 0) fileReads = /^GET \/v1\/volumes\/[^/]+\/file\?/.test(head);
      if (fileReads && fault === "one-request-per-connection" && requests > 1) {
        down.destroy();
        up.destroy();
        return;
      }
      if (fileReads && fault === "shift-ranges") {
        head = head.replace(/^range: bytes=(\d+)-(\d+)$/im, (line, s: string, e: string) => (Number(s) > 0 ? `range: bytes=0-${Number(e) - Number(s)}` : line));
      }
      up.write(Buffer.from(head, "latin1"));
    });
    up.on("data", (chunk: Buffer) => down.write(chunk));
    for (const [a, b] of [[down, up], [up, down]] as const) {
      a.on("end", () => b.end());
      a.on("error", () => b.destroy());
      a.on("close", () => sockets.delete(a));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port: relayPort } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${relayPort}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

let dir: string;
const fx = siloServerFixture();
/** Three and a half blocks, each different: several ranges, the last one short. */
const data = bytes(3 * BLOCK_SIZE + BLOCK_SIZE / 2);
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "silo-get-ranges-"));
  const f = join(dir, "data.bin");
  writeFileSync(f, data);
  expect((await fx.server.cli(["volume", "create", "g1"])).code).toBe(0);
  const put = await fx.server.cli(["volume", "put", "g1", f, "/data.bin"]);
  expect(put.code, put.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const leftovers = () => readdirSync(dir).filter((n) => n.includes("silo-part"));

describe("silo volume get of a large file", () => {
  it("fails, leaving nothing at the target, when a range is answered with bytes from elsewhere in the file", async () => {
    const r = await relay(fx.server.port!, "shift-ranges");
    try {
      const target = join(dir, "shifted.bin");
      const res = await fx.server.cli(["volume", "get", "g1", "/data.bin", target], { env: { SILO_SERVER_URL: r.url } });
      expect(res.code, res.stderr).not.toBe(0);
      expect(res.stderr).toMatch(/to a read of bytes/);
      expect(existsSync(target)).toBe(false);
      expect(leftovers()).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it("sends a read again on a new connection when the server closed the kept-alive one unanswered", async () => {
    const r = await relay(fx.server.port!, "one-request-per-connection");
    try {
      const target = join(dir, "reconnected.bin");
      const res = await fx.server.cli(["volume", "get", "g1", "/data.bin", target], { env: { SILO_SERVER_URL: r.url } });
      expect(res.code, res.stderr).toBe(0);
      expect(readFileSync(target).equals(data)).toBe(true);
      expect(leftovers()).toEqual([]);
    } finally {
      await r.close();
    }
  });
});
