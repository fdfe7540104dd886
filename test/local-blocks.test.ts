/**
 * Local block reads (protocol/local-blocks.ts, docs/volumes.md "Local block reads"): the
 * server's unix socket passes a block's blob file to a client on its host, authorized exactly as
 * the HTTP block read; garbage never crashes or hangs it; a client falls back to HTTP whenever
 * the socket is gone or belongs to another server process.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readSync, closeSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect, createServer } from "node:net";
import { openSync, readdirSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { SiloClient } from "../client/index.js";
import { download } from "../cli/volume-get.js";
import { fuseFdAddon } from "../lib/native-addon.js";
import { LOCAL_BLOCKS, LOCAL_BLOCKS_ROUTE, type LocalBlockReply, type LocalBlocksInfo, parseLocalBlockReply } from "../protocol/local-blocks.js";
import { BLOCK_SIZE } from "../protocol/volume.js";
import { rawExchange } from "./helpers/raw-socket.js";
import { SiloServer, siloServerFixture } from "./helpers/silo-server.js";
import { eventually } from "./helpers/eventually.js";
import { bytes } from "./helpers/volume-data.js";

const addon = fuseFdAddon();
const fx = siloServerFixture([], { blobs: "local" });
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function discover(url: string, token: string): Promise<LocalBlocksInfo> {
  const res = await fetch(`${url}${LOCAL_BLOCKS_ROUTE}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as LocalBlocksInfo;
}

const adminToken = () => `${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`;

/** One exchange on the socket through the addon: the parsed reply and the fds that came with it (every one kept). */
async function ask(socket: string, req: unknown): Promise<{ reply: LocalBlockReply | undefined; fds: number[] }> {
  const res = await addon.fdRequest!(socket, Buffer.from(`${typeof req === "string" ? req : JSON.stringify(req)}\n`), 10_000, LOCAL_BLOCKS.maxReplyBytes, 253);
  const line = res.reply.subarray(0, Math.max(0, res.reply.lastIndexOf(10)));
  const count = typeof req === "object" && req !== null && Array.isArray((req as { hashes?: unknown }).hashes) ? (req as { hashes: unknown[] }).hashes.length : 0;
  return { reply: parseLocalBlockReply(line, count), fds: res.fds! };
}

/** The number of fds process `pid` has open. */
const fdCount = (pid: number | string = "self") => readdirSync(`/proc/${pid}/fd`).length;

/** The first `size` bytes of an fd, then closes it. */
function readFd(fd: number, size: number): Buffer {
  try {
    const out = Buffer.alloc(size);
    for (let at = 0; at < size; ) {
      const n = readSync(fd, out, at, size - at, at);
      if (n === 0) return out.subarray(0, at);
      at += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** A volume with one large (blob file) block and one small (inline) block: the volume id and both blocks. */
async function volumeWithBlocks(name: string): Promise<{ id: string; large: Buffer; small: Buffer }> {
  const large = bytes(BLOCK_SIZE);
  const small = Buffer.from("a small file kept inline\n");
  const vol = await fx.silo.volumes.fromName(name, { createIfMissing: true });
  await vol.batchUpload().putFile(large, "large").putFile(small, "small").commit();
  return { id: vol.id, large, small };
}

describe("local block reads: the server's socket", { timeout: 180_000 }, () => {
  it("passes the blob file of a recorded block to its workspace's token; inline blocks are not local", async () => {
    const { id, large, small } = await volumeWithBlocks("lb-basic");
    const info = await discover(fx.server.url, adminToken());
    expect(info.socket).toBe(join(fx.server.home, LOCAL_BLOCKS.socketPath));
    expect(info.instance).toMatch(/^[0-9a-f]{32}$/);

    const { reply, fds } = await ask(info.socket!, { instance: info.instance, token: adminToken(), volume: id, hashes: [sha256(large)] });
    expect(reply).toEqual({ ok: true, instance: info.instance, blocks: [{ size: BLOCK_SIZE }] });
    expect(fds).toHaveLength(1);
    expect(readFd(fds[0]!, BLOCK_SIZE).equals(large)).toBe(true);

    const inline = await ask(info.socket!, { instance: info.instance, token: adminToken(), volume: id, hashes: [sha256(small)] });
    expect(inline.reply).toEqual({ ok: true, instance: info.instance, blocks: [{ code: "NOT_LOCAL" }] });
    expect(inline.fds).toEqual([]);

    // The client library reads it the same way.
    const vol = await fx.silo.volumes.fromName("lb-basic");
    const into = Buffer.alloc(BLOCK_SIZE);
    expect((await vol.blocks.readBlockLocal(sha256(large), into))?.equals(large)).toBe(true);
    expect(vol.blocks.localBlockCounts).toEqual({ blocks: 1, failures: 0 });
    expect(await vol.blocks.readBlockLocal(sha256(small), into), "an inline block: over HTTP").toBeUndefined();
  });

  it("refuses another workspace's token, a wrong token, another environment and an unknown block, passing no fd", async () => {
    const { id, large } = await volumeWithBlocks("lb-auth");
    const info = await discover(fx.server.url, adminToken());
    const ws = await fx.silo.workspaces.create("lb-tenant");
    const tenantToken = `${ws.tokenId}:${ws.tokenSecret}`;
    // The tenant may use the socket (discovery answers it), for its own blocks only.
    expect((await discover(fx.server.url, tenantToken)).instance).toBe(info.instance);
    const hash = sha256(large);
    const hashes = [hash];
    const cases: Array<[string, object, string]> = [
      ["another workspace's token, the owner's volume", { token: tenantToken, volume: id, hashes }, "NOT_FOUND"],
      ["a wrong secret", { token: `${fx.server.profile.tokenId}:wrong`, volume: id, hashes }, "AUTH"],
      ["no secret", { token: fx.server.profile.tokenId, volume: id, hashes }, "AUTH"],
      ["an unknown environment", { token: adminToken(), environment: "nowhere", volume: id, hashes }, "NOT_FOUND"],
    ];
    for (const [what, req, code] of cases) {
      const { reply, fds } = await ask(info.socket!, { instance: info.instance, ...req });
      expect(reply, what).toMatchObject({ ok: false, code });
      expect(fds, what).toEqual([]);
    }
    // The tenant's own volume does not reach the owner's block either (blocks are per workspace):
    // in one batch with a block of its own and one nobody holds, only its own block comes with an fd.
    await using tenant = new SiloClient({ serverUrl: fx.server.url, tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    const theirs = await tenant.volumes.fromName("lb-theirs", { createIfMissing: true });
    const ownBlock = bytes(BLOCK_SIZE);
    await theirs.batchUpload().putFile(ownBlock, "own").commit();
    const serverFds = fdCount(fx.server.proc!.pid!);
    for (const order of [[hash, sha256(ownBlock), "0".repeat(64)], ["0".repeat(64), sha256(ownBlock), hash]]) {
      const { reply, fds } = await ask(info.socket!, { instance: info.instance, token: tenantToken, volume: theirs.id, hashes: order });
      expect(reply, order.join()).toEqual({
        ok: true,
        instance: info.instance,
        blocks: order.map((h) => (h === sha256(ownBlock) ? { size: BLOCK_SIZE } : { code: "NOT_FOUND" })),
      });
      expect(fds, "one fd: the tenant's own block's").toHaveLength(1);
      expect(readFd(fds[0]!, BLOCK_SIZE).equals(ownBlock)).toBe(true);
    }
    // The server closes its own copy of every file it passed.
    await eventually(() => expect(fdCount(fx.server.proc!.pid!)).toBeLessThanOrEqual(serverFds), 30_000);
    // And through the client library: no block, HTTP decides (404 there too).
    const theirView = await tenant.volumes.fromName("lb-theirs");
    expect(await theirView.blocks.readBlockLocal(hash, Buffer.alloc(BLOCK_SIZE))).toBeUndefined();
  });

  it("answers garbage with INVALID or a close, never hangs or falls over, and serves the next request", async () => {
    const { id, large } = await volumeWithBlocks("lb-garbage");
    const info = await discover(fx.server.url, adminToken());
    const socket = info.socket!;
    const good = { instance: info.instance, token: adminToken(), volume: id, hashes: [sha256(large)] };
    const distinct = (n: number) => Array.from({ length: n }, (_, i) => sha256(Buffer.from(String(i))));
    for (const [what, line] of [
      ["not JSON", "\u0000\u00ff garbage {"],
      ["an array", "[1,2,3]"],
      ["missing fields", "{}"],
      ["a bad hash", JSON.stringify({ ...good, hashes: ["../../etc/passwd"] })],
      ["a bad hash among good ones", JSON.stringify({ ...good, hashes: [sha256(large), "../../etc/passwd"] })],
      ["a number token", JSON.stringify({ ...good, token: 7 })],
      ["one hash, not a list (the first protocol)", JSON.stringify({ ...good, hashes: undefined, hash: sha256(large) })],
      ["no hashes", JSON.stringify({ ...good, hashes: [] })],
      ["a block twice", JSON.stringify({ ...good, hashes: [sha256(large), sha256(large)] })],
      ["one block more than a request may name", JSON.stringify({ ...good, hashes: [sha256(large), ...distinct(LOCAL_BLOCKS.maxBlocks)] })],
    ] as const) {
      const { reply, fds } = await ask(socket, line);
      expect(reply, what).toMatchObject({ ok: false, code: "INVALID" });
      expect(fds, what).toEqual([]);
    }
    // As many as a request may name: answered, each block on its own.
    const full = await ask(socket, { ...good, hashes: [sha256(large), ...distinct(LOCAL_BLOCKS.maxBlocks - 1)] });
    expect(full.reply).toMatchObject({ ok: true, blocks: [{ size: BLOCK_SIZE }, ...distinct(LOCAL_BLOCKS.maxBlocks - 1).map(() => ({ code: "NOT_FOUND" }))] });
    expect(full.fds).toHaveLength(1);
    expect(readFd(full.fds[0]!, BLOCK_SIZE).equals(large)).toBe(true);
    const wrongInstance = await ask(socket, { ...good, instance: "0".repeat(32) });
    expect(wrongInstance.reply).toMatchObject({ ok: false, code: "INSTANCE" });
    expect(wrongInstance.fds).toEqual([]);
    // Too long without a newline: refused and closed, not buffered on.
    const long = await rawExchange(socket, Buffer.alloc(LOCAL_BLOCKS.maxRequestBytes + 10, "a"));
    expect(JSON.parse(long)).toMatchObject({ ok: false, code: "INVALID" });
    // A connection that never sends its request is closed by the server (its deadline), with no reply.
    expect(await rawExchange(socket, null)).toBe("");
    expect(await rawExchange(socket, Buffer.from('{"instance":'))).toBe("");
    // A client that closes at once does not hurt either.
    await new Promise<void>((resolve) => connect(socket).on("connect", function (this: ReturnType<typeof connect>) {
      this.destroy();
      resolve();
    }));
    const after = await ask(socket, good);
    expect(after.reply).toMatchObject({ ok: true, blocks: [{ size: BLOCK_SIZE }] });
    expect(readFd(after.fds[0]!, BLOCK_SIZE).equals(large)).toBe(true);
    expect((await fetch(`${fx.server.url}/healthz`)).status).toBe(200);
  });

  it("a restarted server has a new instance; a client falls back to HTTP meanwhile and finds the new socket", async () => {
    const { id, large } = await volumeWithBlocks("lb-restart");
    const before = await discover(fx.server.url, adminToken());
    const vol = await fx.silo.volumes.fromName("lb-restart");
    const hash = sha256(large);
    const into = Buffer.alloc(BLOCK_SIZE);
    expect((await vol.blocks.readBlockLocal(hash, into))?.equals(large)).toBe(true);

    // Killed: the socket file stays behind, and the next start replaces it.
    await fx.server.stop("SIGKILL");
    expect(existsSync(before.socket!)).toBe(true);
    expect(await vol.blocks.readBlockLocal(hash, into), "no server: not local").toBeUndefined();
    await fx.server.launch();
    const after = await discover(fx.server.url, adminToken());
    expect(after.socket).toBe(before.socket);
    expect(after.instance).not.toBe(before.instance);
    // A request naming the old instance is refused by the new process.
    expect((await ask(after.socket!, { instance: before.instance, token: adminToken(), volume: id, hashes: [hash] })).reply).toMatchObject({ code: "INSTANCE" });
    // The client looks the socket up again after a failure and reads locally once more.
    expect((await vol.blocks.readBlockLocal(hash, into))?.equals(large)).toBe(true);
    expect(vol.blocks.localBlockCounts.blocks).toBe(2);

    // The socket deleted: not local (the caller reads over HTTP), and the server still serves HTTP.
    unlinkSync(after.socket!);
    expect(await vol.blocks.readBlockLocal(hash, into)).toBeUndefined();
    expect((await vol.blocks.readBlock(hash)).equals(large)).toBe(true);

    // A clean stop removes the socket.
    await fx.server.restart();
    const third = await discover(fx.server.url, adminToken());
    expect(existsSync(third.socket!)).toBe(true);
    await fx.server.stop();
    expect(existsSync(third.socket!)).toBe(false);
    await fx.server.launch();
  });

  it("is off with --no-local-blocks (no socket) and, in a client, with SILO_LOCAL_BLOCKS=0", async () => {
    const off = await SiloServer.start(["--no-local-blocks"], { blobs: "local" });
    try {
      expect(await discover(off.url, `${off.profile.tokenId}:${off.profile.tokenSecret}`)).toEqual({});
      expect(existsSync(join(off.home, LOCAL_BLOCKS.socketPath))).toBe(false);
    } finally {
      await off.cleanup();
    }
    const { large } = await volumeWithBlocks("lb-env");
    const saved = process.env.SILO_LOCAL_BLOCKS;
    process.env.SILO_LOCAL_BLOCKS = "0";
    try {
      await using client = fx.server.client();
      const vol = await client.volumes.fromName("lb-env");
      expect(await vol.blocks.readBlockLocal(sha256(large), Buffer.alloc(BLOCK_SIZE))).toBeUndefined();
      expect(vol.blocks.localBlockCounts).toEqual({ blocks: 0, failures: 0 });
    } finally {
      if (saved === undefined) delete process.env.SILO_LOCAL_BLOCKS;
      else process.env.SILO_LOCAL_BLOCKS = saved;
    }
  });
});

describe("local block reads: silo volume get", { timeout: 180_000 }, () => {
  /**
   * A file of two blocks, a block of zeros, the first block again and a partial block (more than
   * the first batch a local download asks for); downloaded with a fresh client: its bytes and the
   * client's local block count.
   */
  async function get(name: string, opts: { dropSocket?: boolean } = {}): Promise<{ data: Buffer; got: Buffer; local: number }> {
    const first = bytes(BLOCK_SIZE);
    const data = Buffer.concat([first, bytes(BLOCK_SIZE), Buffer.alloc(BLOCK_SIZE), first, bytes(BLOCK_SIZE / 2 + 7)]);
    const vol = await fx.silo.volumes.fromName(name, { createIfMissing: true });
    await vol.batchUpload().putFile(data, "big.bin").commit();
    if (opts.dropSocket) unlinkSync(join(fx.server.home, LOCAL_BLOCKS.socketPath));
    const out = mkdtempSync(join(tmpdir(), "silo-get-local-"));
    try {
      await using client = fx.server.client();
      const v = await client.volumes.fromName(name);
      await download(v, "big.bin", join(out, "big.bin"), false);
      return { data, got: readFileSync(join(out, "big.bin")), local: v.blocks.localBlockCounts.blocks };
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }

  it("copies each stored block from the server's file; the bytes are the file's", async () => {
    const { data, got, local } = await get("lb-get");
    expect(got.equals(data)).toBe(true);
    expect(local, "the three distinct stored blocks, each asked for once (the zeros are a hole or a block)").toBeGreaterThanOrEqual(3);
    expect(local).toBeLessThanOrEqual(4);
  });

  it("without the socket, or with SILO_LOCAL_BLOCKS=0, downloads over HTTP, the same bytes", async () => {
    const gone = await get("lb-get-gone", { dropSocket: true });
    expect(gone.got.equals(gone.data)).toBe(true);
    expect(gone.local).toBe(0);
    await fx.server.restart();
    const saved = process.env.SILO_LOCAL_BLOCKS;
    process.env.SILO_LOCAL_BLOCKS = "0";
    try {
      const off = await get("lb-get-off");
      expect(off.got.equals(off.data)).toBe(true);
      expect(off.local).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.SILO_LOCAL_BLOCKS;
      else process.env.SILO_LOCAL_BLOCKS = saved;
    }
  });
});

describe("local block reads: a client trusts no socket blindly", { timeout: 180_000 }, () => {
  it("reads only a regular file holding the block, and closes any fd a refusal or a bad reply brings", async () => {
    const { large } = await volumeWithBlocks("lb-impostor");
    const vol = await fx.silo.volumes.fromName("lb-impostor");
    const hash = sha256(large);
    const into = Buffer.alloc(BLOCK_SIZE);
    // The client learns the socket and the instance id from the real server first.
    expect((await vol.blocks.readBlockLocal(hash, into))?.equals(large)).toBe(true);
    const info = await discover(fx.server.url, adminToken());
    const socket = info.socket!;
    // Then another process serves that path with the right instance id (what a process of the
    // server's user could do): each reply passes /dev/zero, or regular files holding a block's
    // worth of zeros where the reply's blocks do not say which file is which.
    const zeros = join(mkdtempSync(join(tmpdir(), "silo-impostor-")), "zeros");
    writeFileSync(zeros, Buffer.alloc(BLOCK_SIZE));
    const replies: Array<[object, string[]]> = [
      [{ ok: true, instance: info.instance, blocks: [{ size: BLOCK_SIZE }] }, ["/dev/zero"]],
      [{ ok: false, instance: info.instance, code: "NOT_FOUND", message: "no" }, ["/dev/zero"]],
      [{ ok: true, instance: "0".repeat(32), blocks: [{ size: BLOCK_SIZE }] }, ["/dev/zero"]],
      [{ ok: true, instance: info.instance, blocks: [{ code: "NOT_FOUND" }] }, [zeros]],
      [{ ok: true, instance: info.instance, blocks: [{ size: BLOCK_SIZE }] }, [zeros, zeros]],
      [{ ok: true, instance: info.instance, blocks: [{ size: BLOCK_SIZE }, { size: BLOCK_SIZE }] }, [zeros, zeros]],
    ];
    let served = 0;
    const impostor = createServer((s) => {
      s.once("data", () => {
        const [reply, paths] = replies[served++ % replies.length]!;
        const fds = paths.map((p) => openSync(p, "r"));
        addon.sendFd!((s as unknown as { _handle: { fd: number } })._handle.fd, Buffer.from(`${JSON.stringify(reply)}\n`), fds);
        for (const fd of fds) closeSync(fd);
        s.destroy();
      });
    });
    renameSync(socket, `${socket}.real`);
    await new Promise<void>((resolve) => impostor.listen(socket, resolve));
    const before = fdCount();
    try {
      for (let i = 0; i < replies.length; i++) {
        expect(await vol.blocks.readBlockLocal(hash, into), `reply ${i}`).toBeUndefined();
        // The rests after repeated failures would skip the socket: each reply must be asked for.
        (vol.blocks as unknown as { localReader: { restUntil: number } }).localReader.restUntil = 0;
      }
      expect(served).toBe(replies.length);
      expect(fdCount(), "every passed fd closed").toBe(before);
    } finally {
      await new Promise<void>((resolve) => impostor.close(() => resolve()));
      renameSync(`${socket}.real`, socket);
      rmSync(dirname(zeros), { recursive: true, force: true });
    }
    // Over HTTP the block is still the block.
    expect((await vol.blocks.readBlock(hash)).equals(large)).toBe(true);
  });
});
