import { closeSync } from "node:fs";
import { type Server, type Socket, createServer } from "node:net";
import type { FastifyBaseLogger } from "fastify";
import { BlockBuffers } from "../../lib/block-buffers.js";
import type { FuseFdAddon } from "../../lib/native-addon.js";
import { LOCAL_PUT, type LocalPutErrorCode, type LocalPutReply, parseLocalPutRequest } from "../../protocol/local-blocks.js";
import { BLOCK_SIZE } from "../../protocol/volume.js";
import { callerOf } from "../auth/authenticate.js";
import type { AuthStore } from "../auth/store.js";
import { asNoSpace } from "../disk-full.js";
import { SiloError } from "../errors.js";
import { type BlockReader, nativeBlockReader, readHashed } from "./local-put.js";
import { MAX_SOCKET_PATH, listenUnixSocket, removeUnixSocket } from "./unix-socket.js";
import type { VolumeStore } from "./volume-store.js";

/**
 * Exchanges served at once; more connections wait (unread) for a slot. A client keeps
 * LOCAL_PUT.inFlight in flight; each exchange holds two block buffers and, while its request
 * is read, a thread-pool thread (for at most LOCAL_PUT.receiveMs).
 */
const MAX_EXCHANGES = 2;

/** What the server counts (silo_volume_local_put_* in /metrics). */
export interface LocalPutCounts {
  /** Requests answered `ok`, and the blocks and bytes they covered. */
  requests: number;
  blocks: number;
  bytes: number;
  /** Blocks, and their bytes, that had to be written (the others were held already). */
  blocksWritten: number;
  bytesWritten: number;
  /** Of bytesWritten, those written with O_DIRECT from the pooled buffers (no page-cache copy). */
  bytesDirect: number;
  /** Requests refused (any code). */
  refused: number;
}

/**
 * Local block writes, the server's side (protocol/local-blocks.ts, LOCAL_PUT): a unix socket
 * under the server's home whose requests carry the open fd of a client's source file. A request
 * is authorized exactly as the HTTP block upload (`PUT /v1/volumes/:id/blocks/:hash`): the same
 * token check (callerOf), the volume opened in the caller's workspace and environment; every
 * token that may upload a block there may do this. The blocks are then read, hashed and stored
 * here (VolumeStore.storeFileRange) and the reply sent only once they are durable.
 *
 * Why a socket of its own, and why the request is read natively: Node's reads of a socket use
 * read(2), which drops the SCM_RIGHTS fd, so this socket's net.Server never reads
 * (pauseOnConnect) and the addon's recvRequest reads the request line and its fd on the thread
 * pool. Putting the writes on the reads' socket would mean reading every read request that way
 * too; two sockets keep the two exchanges independent.
 */
export class LocalPutServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Exchanges in progress (close waits for them: their socket fd is in the addon's hands). */
  private readonly exchanges = new Set<Promise<void>>();
  /** Page-aligned where the addon can make them: the blob store then writes staged blocks from them with O_DIRECT. */
  private readonly buffers: BlockBuffers;
  /** How blocks are read and hashed: on the thread pool where the addon can (readHashed), else on the main thread. */
  private readonly read: BlockReader;
  readonly counts: LocalPutCounts = { requests: 0, blocks: 0, bytes: 0, blocksWritten: 0, bytesWritten: 0, bytesDirect: 0, refused: 0 };

  private constructor(
    readonly path: string,
    /** The serving process's id, shared with the reads' socket (LocalBlockServer.instance). */
    private readonly instance: string,
    private readonly addon: Required<Pick<FuseFdAddon, "sendFd" | "recvRequest">> & Pick<FuseFdAddon, "alignedBuffer" | "readHashed">,
    private readonly auth: AuthStore,
    private readonly volumes: VolumeStore,
    private readonly dataDir: string,
    private readonly log: FastifyBaseLogger,
  ) {
    const aligned = addon.alignedBuffer;
    this.buffers = new BlockBuffers(BLOCK_SIZE, 2 * MAX_EXCHANGES, aligned ? (n) => aligned(n) : null);
    this.read = addon.readHashed ? nativeBlockReader(addon.readHashed) : readHashed;
  }

  /** Listens at `path` (a stale socket there is removed); undefined, with a log line, if it cannot. */
  static async start(
    path: string,
    instance: string,
    addon: FuseFdAddon | undefined,
    deps: { auth: AuthStore; volumes: VolumeStore; dataDir: string; log: FastifyBaseLogger },
  ): Promise<LocalPutServer | undefined> {
    const { log } = deps;
    if (!addon?.sendFd || !addon.recvRequest) {
      log.info("local block writes off: the native addon is not built (or older than them)");
      return undefined;
    }
    if (!deps.volumes.blobs.group) return undefined;
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      log.warn({ path }, "local block writes off: the socket path is longer than a unix socket address allows");
      return undefined;
    }
    const a = {
      sendFd: addon.sendFd.bind(addon),
      recvRequest: addon.recvRequest.bind(addon),
      alignedBuffer: addon.alignedBuffer?.bind(addon),
      readHashed: addon.readHashed?.bind(addon),
    };
    const s = new LocalPutServer(path, instance, a, deps.auth, deps.volumes, deps.dataDir, log);
    try {
      await s.listen();
    } catch (err) {
      log.warn({ err, path }, "local block writes off: could not listen on the socket");
      return undefined;
    }
    return s;
  }

  private listen(): Promise<void> {
    // pauseOnConnect: Node never reads these connections (its reads would drop the passed fd).
    const server = createServer({ pauseOnConnect: true }, (socket) => this.serve(socket));
    this.server = server;
    return listenUnixSocket(server, this.path, (err) => this.log.error({ err }, "local block write socket failed"));
  }

  /** Stops listening, lets the exchanges in progress finish, drops waiting connections, removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...this.exchanges]);
    for (const s of this.sockets) s.destroy();
    await closed;
    removeUnixSocket(this.path);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    // Nothing is read or written through Node, so no error is expected; a destroyed socket ends the exchange.
    socket.on("error", () => {});
    const exchange = this.exchange(socket).finally(() => {
      this.exchanges.delete(exchange);
      socket.destroy();
    });
    this.exchanges.add(exchange);
  }

  private async exchange(socket: Socket): Promise<void> {
    if (this.running >= MAX_EXCHANGES) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      if (!this.server || socket.destroyed) return;
      const sock = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof sock !== "number" || sock < 0) return;
      let got: { request: Buffer; fd: number; complete: boolean };
      try {
        got = await this.addon.recvRequest(sock, LOCAL_PUT.maxRequestBytes, LOCAL_PUT.receiveMs);
      } catch {
        // No whole request in time, or the connection failed: closed without a reply.
        return;
      }
      let reply: LocalPutReply;
      try {
        reply = await this.answer(got);
      } catch (err) {
        this.log.error({ err }, "local block write failed");
        reply = this.refusal("INTERNAL", "The server could not store the blocks");
      } finally {
        // The client's file: never kept past its request.
        if (got.fd >= 0) closeSync(got.fd);
      }
      if (!reply.ok) this.counts.refused++;
      const bytes = Buffer.from(`${JSON.stringify(reply)}\n`);
      const sent = this.addon.sendFd(sock, bytes, -1);
      // The client reads nothing else and the reply is small: a short send means it went away.
      if (sent !== bytes.length) this.log.debug({ sent }, "local block write reply not sent whole");
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async answer(got: { request: Buffer; fd: number; complete: boolean }): Promise<LocalPutReply> {
    if (!got.complete) return this.refusal("INVALID", `A request is one line of at most ${LOCAL_PUT.maxRequestBytes} bytes`);
    const req = parseLocalPutRequest(got.request.toString("utf8"));
    if (typeof req === "string") return this.refusal("INVALID", req);
    if (req.instance !== this.instance) return this.refusal("INSTANCE", "The request names another server process");
    if (got.fd < 0) return this.refusal("INVALID", "No file descriptor came with the request");
    try {
      const caller = callerOf(this.auth, req.token, req.environment);
      const vol = await this.volumes.open(caller, req.volume);
      const stored = await this.volumes.storeFileRange(vol, got.fd, req.offset, req.length, this.buffers, this.read);
      this.counts.requests++;
      this.counts.blocks += stored.blocks.length;
      this.counts.bytes += req.length;
      this.counts.blocksWritten += stored.written;
      this.counts.bytesWritten += stored.bytesWritten;
      this.counts.bytesDirect += stored.bytesDirect;
      return { ok: true, instance: this.instance, blocks: stored.blocks, written: stored.written };
    } catch (err) {
      const e = asNoSpace(err, this.dataDir);
      if (e instanceof SiloError && (e.code === "AUTH" || e.code === "NOT_FOUND" || e.code === "INVALID" || e.code === "NO_SPACE")) {
        return this.refusal(e.code, e.message);
      }
      throw err;
    }
  }

  private refusal(code: LocalPutErrorCode, message: string): LocalPutReply {
    return { ok: false, instance: this.instance, code, message };
  }
}
