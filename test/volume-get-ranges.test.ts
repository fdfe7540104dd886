/**
 * `silo volume get` of a large file receives its ranges straight into buffers over connections
 * of its own (client/buffer-connection.ts). Between the CLI and a real server sits a TCP relay
 * that misbehaves the way a broken proxy or a server closing idle connections would.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { relay } from "./helpers/tcp-relay.js";
import { bytes } from "./helpers/volume-data.js";

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

/** The CLI through the relay, over HTTP only (local block reads would skip the relay: test/local-blocks.test.ts covers them). */
const viaRelay = (url: string) => ({ SILO_SERVER_URL: url, SILO_LOCAL_BLOCKS: "0" });

const leftovers = () => readdirSync(dir).filter((n) => n.includes("silo-part"));

describe("silo volume get of a large file", () => {
  it("fails, leaving nothing at the target, when a range is answered with bytes from elsewhere in the file", async () => {
    const r = await relay(fx.server.port!, "shift-ranges");
    try {
      const target = join(dir, "shifted.bin");
      const res = await fx.server.cli(["volume", "get", "g1", "/data.bin", target], { env: viaRelay(r.url) });
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
      const res = await fx.server.cli(["volume", "get", "g1", "/data.bin", target], { env: viaRelay(r.url) });
      expect(res.code, res.stderr).toBe(0);
      expect(readFileSync(target).equals(data)).toBe(true);
      expect(leftovers()).toEqual([]);
    } finally {
      await r.close();
    }
  });
});
