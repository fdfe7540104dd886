/**
 * Local block writes (protocol/local-blocks.ts LOCAL_PUT, docs/volumes.md "Local block reads and
 * writes"): on the server's host `volume put` passes the server its source file's fd; the server
 * reads, hashes and stores the blocks and answers only once they are durable. The committed
 * file is the same as over HTTP; authorization is the HTTP upload's; garbage and odd fds are
 * INVALID without hurting the server; a kill -9 loses no block the server had answered for.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SiloClient } from "../client/index.js";
import { fuseFdAddon } from "../lib/native-addon.js";
import {
  LOCAL_BLOCKS_ROUTE,
  LOCAL_PUT,
  type LocalBlocksInfo,
  type LocalPutReply,
  parseLocalPutReply,
} from "../protocol/local-blocks.js";
import { BLOCK_SIZE, expandBlocks } from "../protocol/volume.js";
import { parsePrometheus, sampleValue } from "./helpers/prometheus.js";
import { rawExchange } from "./helpers/raw-socket.js";
import { SiloServer, siloServerFixture } from "./helpers/silo-server.js";
import { SmallDisk } from "./helpers/tmpfs.js";
import { localBlobs } from "./helpers/blob-backend.js";

const addon = fuseFdAddon();
const fx = siloServerFixture([], { blobs: "local" });
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const dir = mkdtempSync(join(tmpdir(), "silo-local-put-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const adminToken = () => `${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`;

async function discover(token = adminToken()): Promise<LocalBlocksInfo> {
  const res = await fetch(`${fx.server.url}${LOCAL_BLOCKS_ROUTE}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as LocalBlocksInfo;
}

async function metric(name: string): Promise<number> {
  const res = await fetch(`${fx.server.url}/metrics`, { headers: { authorization: `Bearer ${adminToken()}` } });
  return sampleValue(parsePrometheus(await res.text()), name) ?? 0;
}

/** A file of `size` random bytes (every block distinct); its path. */
function randomFile(name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

/** One put exchange on the socket with `fd` attached (fd < 0: a plain request without one). */
async function put(fd: number, req: unknown, offset = 0, length = 0): Promise<LocalPutReply | undefined> {
  const info = await discover();
  const line = Buffer.from(`${typeof req === "string" ? req : JSON.stringify({ op: "put", instance: info.instance, token: adminToken(), ...(req as object) })}\n`);
  const res =
    fd >= 0
      ? await addon.fdPutRequest!(info.putSocket!, line, fd, 60_000, LOCAL_PUT.maxReplyBytes)
      : await addon.fdRequest!(info.putSocket!, line, 60_000, LOCAL_PUT.maxReplyBytes);
  if (res.fd >= 0) closeSync(res.fd);
  const body = res.reply.subarray(0, Math.max(0, res.reply.lastIndexOf(10)));
  return parseLocalPutReply(body, offset, length) ?? (JSON.parse(body.toString()) as LocalPutReply);
}

/** The file entry's block hashes at `path` in the volume's latest version. */
async function blocksOf(client: SiloClient, volume: string, path: string): Promise<Array<string | null>> {
  const vol = await client.volumes.fromName(volume);
  const page = await vol.blocks.tree(await vol.blocks.latestVersion());
  const entry = page.entries.find((e) => e.path === path);
  expect(entry, path).toBeDefined();
  return [...expandBlocks(entry!.blocks ?? [])];
}

describe("local block writes", { timeout: 300_000 }, () => {
  it("`volume put` by fd commits the same blocks and bytes as over HTTP, and the server counts it", async () => {
    const info = await discover();
    expect(info.putSocket).toBe(join(fx.server.home, LOCAL_PUT.socketPath));
    // Two ranges (16 + 3 blocks), the last block partial; and one whose last block is inline-sized.
    for (const [name, size] of [
      ["big.bin", 18 * BLOCK_SIZE + 123_457],
      ["tail.bin", 2 * BLOCK_SIZE + 1000],
    ] as const) {
      const src = randomFile(name, size);
      for (const vol of ["lp-http", "lp-fd"]) await fx.silo.volumes.fromName(vol, { createIfMissing: true });
      const requests0 = await metric("silo_volume_local_put_requests_total");
      const http = await fx.server.cli(["volume", "put", "lp-http", src, name], { env: { SILO_LOCAL_BLOCKS: "0" } });
      expect(http.code, http.stderr).toBe(0);
      expect(await metric("silo_volume_local_put_requests_total"), "SILO_LOCAL_BLOCKS=0: over HTTP").toBe(requests0);
      const fd = await fx.server.cli(["volume", "put", "lp-fd", src, name]);
      expect(fd.code, fd.stderr).toBe(0);
      expect(await metric("silo_volume_local_put_requests_total"), "by fd: one request per 16 blocks").toBe(requests0 + Math.ceil(size / (LOCAL_PUT.maxBlocks * BLOCK_SIZE)));
      expect(await blocksOf(fx.silo, "lp-fd", name)).toEqual(await blocksOf(fx.silo, "lp-http", name));
      const back = join(dir, `${name}.back`);
      const got = await fx.server.cli(["volume", "get", "lp-fd", name, back]);
      expect(got.code, got.stderr).toBe(0);
      expect(readFileSync(back).equals(readFileSync(src))).toBe(true);
    }
    // Blocks the server held already are not written again.
    const blocks0 = await metric("silo_volume_local_put_blocks_written_total");
    expect((await fx.server.cli(["volume", "put", "lp-fd", join(dir, "big.bin"), "again.bin"])).code).toBe(0);
    expect(await metric("silo_volume_local_put_blocks_written_total")).toBe(blocks0);
  });

  it("writes new blocks from page-aligned buffers with O_DIRECT; every stored blob holds the bytes its name is the hash of", async () => {
    await fx.silo.volumes.fromName("lp-direct", { createIfMissing: true });
    const src = randomFile("direct.bin", 5 * BLOCK_SIZE + 20 * 4096 + 555);
    const written0 = await metric("silo_volume_local_put_bytes_written_total");
    const direct0 = await metric("silo_volume_local_put_bytes_direct_total");
    const res = await fx.server.cli(["volume", "put", "lp-direct", src, "d.bin"]);
    expect(res.code, res.stderr).toBe(0);
    // All of the 6 blocks' bytes (the last one larger than an inline block) but its last partial page: no page-cache copy of them.
    expect((await metric("silo_volume_local_put_bytes_written_total")) - written0).toBe(5 * BLOCK_SIZE + 20 * 4096 + 555);
    expect((await metric("silo_volume_local_put_bytes_direct_total")) - direct0).toBe(5 * BLOCK_SIZE + 20 * 4096);
    const blobsDir = join(fx.server.home, "data", "blobs");
    const files = readdirSync(blobsDir, { recursive: true }).map(String).filter((f) => /^[0-9a-f]{64}$/.test(f.split("/").pop()!));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(sha256(readFileSync(join(blobsDir, f))), f).toBe(f.split("/").pop());
    const back = join(dir, "direct.back");
    expect((await fx.server.cli(["volume", "get", "lp-direct", "d.bin", back])).code).toBe(0);
    expect(readFileSync(back).equals(readFileSync(src))).toBe(true);
  });

  it("is authorized as the HTTP upload: another workspace's token, a wrong or revoked token are refused, nothing written", async () => {
    const vol = await fx.silo.volumes.fromName("lp-auth", { createIfMissing: true });
    await vol.batchUpload().putFile(randomBytes(BLOCK_SIZE), "some-block").commit(); // the blob store exists
    const ws = await fx.silo.workspaces.create("lp-tenant");
    const plain = await fx.silo.tokens.create({ label: "lp-revoked" });
    await fx.silo.tokens.revoke(plain.tokenId);
    const src = randomFile("auth.bin", BLOCK_SIZE + 5);
    const before = await fx.server.storedBlobs();
    const fd = openSync(src, "r");
    try {
      for (const [what, token, code] of [
        ["another workspace's token", `${ws.tokenId}:${ws.tokenSecret}`, "NOT_FOUND"],
        ["a wrong secret", `${fx.server.profile.tokenId}:wrong`, "AUTH"],
        ["a revoked token", `${plain.tokenId}:${plain.tokenSecret}`, "AUTH"],
      ] as const) {
        const reply = await put(fd, { token, volume: vol.id, offset: 0, length: BLOCK_SIZE + 5 });
        expect(reply, what).toMatchObject({ ok: false, code });
      }
      expect(await fx.server.storedBlobs(), "nothing written").toEqual(before);
      // The owner's token is served.
      const ok = await put(fd, { volume: vol.id, offset: 0, length: BLOCK_SIZE + 5 }, 0, BLOCK_SIZE + 5);
      expect(ok).toMatchObject({ ok: true, written: 2 });
    } finally {
      closeSync(fd);
    }
  });

  it("answers a pipe, a directory, a socket, no fd, a range past the end and garbage with INVALID, and stays up", async () => {
    const vol = await fx.silo.volumes.fromName("lp-garbage", { createIfMissing: true });
    await vol.batchUpload().putFile(randomBytes(BLOCK_SIZE), "some-block").commit(); // the blob store exists
    const req = { volume: vol.id, offset: 0, length: 100 };
    const [r, w] = addon.socketpair(); // a socket
    const listener = createServer();
    const sockPath = join(dir, "peer.sock");
    await new Promise<void>((res) => listener.listen(sockPath, () => res()));
    const dirFd = openSync(dir, "r");
    const small = randomFile("small.bin", 50);
    const smallFd = openSync(small, "r");
    const before = await fx.server.storedBlobs();
    try {
      for (const [what, fd, body] of [
        ["a directory", dirFd, req],
        ["a socket", r, req],
        ["no fd at all", -1, req],
        ["a range past the end of the file", smallFd, req],
        ["an offset not on a block boundary", smallFd, { ...req, offset: 7, length: 10 }],
        ["a range over 16 blocks", smallFd, { ...req, length: LOCAL_PUT.maxBlocks * BLOCK_SIZE + 1 }],
        ["another op", smallFd, { ...req, op: "get" }],
        ["not JSON", smallFd, "\u0000 not json {"],
      ] as const) {
        const reply = await put(fd, body);
        expect(reply, what).toMatchObject({ ok: false, code: "INVALID" });
      }
      // A pipe: its read end passed.
      const pipe = pipeFd();
      try {
        expect(await put(pipe, req), "a pipe").toMatchObject({ ok: false, code: "INVALID" });
      } finally {
        closeSync(pipe);
      }
      // A connection that sends nothing, or half a line, is closed without a reply (after LOCAL_PUT.receiveMs).
      const info = await discover();
      expect(await rawExchange(info.putSocket!, null)).toBe("");
      expect(await rawExchange(info.putSocket!, Buffer.from('{"op":"put"'))).toBe("");
      expect(await fx.server.storedBlobs(), "nothing written").toEqual(before);
      // Still serving: a good request, and HTTP.
      expect(await put(smallFd, { ...req, length: 50 }, 0, 50)).toMatchObject({ ok: true });
      expect((await fetch(`${fx.server.url}/healthz`)).status).toBe(200);
    } finally {
      closeSync(r);
      closeSync(w);
      closeSync(dirFd);
      closeSync(smallFd);
      listener.close();
    }
  });

  it("kill -9 during puts: every block the server answered for is there after the restart, whole", async () => {
    const vol = await fx.silo.volumes.fromName("lp-crash", { createIfMissing: true });
    const span = 4 * BLOCK_SIZE;
    const src = randomFile("crash.bin", 40 * span);
    const fd = openSync(src, "r");
    const data = readFileSync(src);
    const info = await discover();
    /** Every block answered for: hash → its bytes' range in the file. */
    const ledger = new Map<string, number>();
    let answered = 0;
    let stop = false;
    const worker = async (first: number) => {
      for (let i = first; !stop && i < 40; i += 2) {
        const line = Buffer.from(`${JSON.stringify({ op: "put", instance: info.instance, token: adminToken(), volume: vol.id, offset: i * span, length: span })}\n`);
        let res: { reply: Buffer; fd: number };
        try {
          res = await addon.fdPutRequest!(info.putSocket!, line, fd, 60_000, LOCAL_PUT.maxReplyBytes);
        } catch {
          return; // the server died mid-exchange: not answered
        }
        const reply = parseLocalPutReply(res.reply.subarray(0, Math.max(0, res.reply.lastIndexOf(10))), i * span, span);
        if (!reply?.ok) return;
        reply.blocks.forEach((b, k) => ledger.set(b.hash, i * span + k * BLOCK_SIZE));
        answered++;
      }
    };
    const running = Promise.all([worker(0), worker(1)]);
    while (answered < 3) await new Promise((r) => setTimeout(r, 5));
    await fx.server.stop("SIGKILL");
    stop = true;
    await running;
    closeSync(fd);
    expect(ledger.size).toBeGreaterThanOrEqual(3 * 4);
    await fx.server.launch();
    await using client = fx.server.client();
    const again = await client.volumes.fromName("lp-crash");
    expect(await again.blocks.missingBlocks([...ledger.keys()]), "every answered block is recorded").toEqual([]);
    for (const [hash, at] of ledger) {
      const got = await again.blocks.readBlock(hash);
      expect(sha256(got), `block at ${at}`).toBe(hash);
      expect(got.equals(data.subarray(at, at + BLOCK_SIZE))).toBe(true);
    }
  });

  it("the CLI falls back to HTTP when the fast path fails (the socket gone), with the same result", async () => {
    await fx.silo.volumes.fromName("lp-fallback", { createIfMissing: true });
    const src = randomFile("fallback.bin", 3 * BLOCK_SIZE + 77);
    const info = await discover();
    unlinkSync(info.putSocket!);
    try {
      const requests0 = await metric("silo_volume_local_put_requests_total");
      const res = await fx.server.cli(["volume", "put", "lp-fallback", src, "f.bin"]);
      expect(res.code, res.stderr).toBe(0);
      expect(await metric("silo_volume_local_put_requests_total")).toBe(requests0);
      const back = join(dir, "fallback.back");
      expect((await fx.server.cli(["volume", "get", "lp-fallback", "f.bin", back])).code).toBe(0);
      expect(readFileSync(back).equals(readFileSync(src))).toBe(true);
    } finally {
      await fx.server.restart();
    }
  });
});

describe("local block writes on a full disk", { timeout: 300_000 }, () => {
  let disk: SmallDisk | undefined;
  let server: SiloServer | undefined;
  afterAll(async () => {
    await server?.stop("SIGKILL");
    disk?.unmount();
  });

  it("answers NO_SPACE with nothing recorded and no temp file left; stores the range once there is room", async () => {
    disk = SmallDisk.mount(96 * 1024 * 1024);
    server = new SiloServer(mkdtempSync(join(disk.dir, "home-")), [], localBlobs());
    await server.launch();
    await using client = server.client();
    const vol = await client.volumes.fromName("full", { createIfMissing: true });
    await vol.batchUpload().putFile(randomBytes(BLOCK_SIZE), "first").commit(); // the blob store exists
    const size = 3 * BLOCK_SIZE;
    const src = randomFile("full.bin", size);
    const data = readFileSync(src);
    const hashes = [0, 1, 2].map((i) => sha256(data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE)));
    const res = await fetch(`${server.url}${LOCAL_BLOCKS_ROUTE}`, { headers: { authorization: `Bearer ${server.profile.tokenId}:${server.profile.tokenSecret}` } });
    const info = (await res.json()) as LocalBlocksInfo;
    const fd = openSync(src, "r");
    const ask = async () => {
      const line = Buffer.from(`${JSON.stringify({ op: "put", instance: info.instance, token: `${server!.profile.tokenId}:${server!.profile.tokenSecret}`, volume: vol.id, offset: 0, length: size })}\n`);
      const r = await addon.fdPutRequest!(info.putSocket!, line, fd, 60_000, LOCAL_PUT.maxReplyBytes);
      const body = r.reply.subarray(0, Math.max(0, r.reply.lastIndexOf(10)));
      return parseLocalPutReply(body, 0, size) ?? (JSON.parse(body.toString()) as LocalPutReply);
    };
    const tempFiles = () => readdirSync(join(server!.home, "data", "blobs"), { recursive: true }).filter((f) => String(f).includes(".tmp-"));
    try {
      disk.fill();
      expect(await ask()).toMatchObject({ ok: false, code: "NO_SPACE" });
      expect(tempFiles(), "no temp file left").toEqual([]);
      disk.free();
      expect(await vol.blocks.missingBlocks(hashes), "nothing recorded").toEqual(hashes);
      expect(await ask()).toMatchObject({ ok: true, written: 3, blocks: hashes.map((hash) => ({ hash, size: BLOCK_SIZE })) });
      expect(await vol.blocks.missingBlocks(hashes)).toEqual([]);
    } finally {
      closeSync(fd);
      disk.free();
    }
  });
});

/** A pipe (a named one, opened read-write so the open does not wait for a writer). */
function pipeFd(): number {
  const path = join(dir, `fifo-${randomBytes(4).toString("hex")}`);
  execFileSync("mkfifo", [path]);
  return openSync(path, "r+");
}
