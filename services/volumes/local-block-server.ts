import { randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { type Server, type Socket, createServer } from "node:net";
import type { FastifyBaseLogger } from "fastify";
import { LOCAL_BLOCKS, type LocalBlockErrorCode, type LocalBlockReply, type LocalBlockResult, type LocalBlocksInfo, parseLocalBlockRequest } from "../../protocol/local-blocks.js";
import { SiloError } from "../../protocol/errors.js";
import type { FuseFdAddon } from "../../lib/native-addon.js";
import { callerOf } from "../auth/authenticate.js";
import type { AuthStore } from "../auth/store.js";
import { MAX_SOCKET_PATH, listenUnixSocket, removeUnixSocket } from "./unix-socket.js";
import type { OpenVolume, VolumeStore } from "./volume-store.js";

/** Connections served at once at most (each is one request, answered at once or closed within LOCAL_BLOCKS.idleMs). */
const MAX_CONNECTIONS = 256;


/**
 * Local block reads, the server's side (protocol/local-blocks.ts): a unix socket under the
 * server's home answering each request with the blocks' blob files, opened read-only and passed
 * as SCM_RIGHTS in one message. A request is authorized exactly as `GET /v1/volumes/:id/blocks/:hash`
 * for each of its blocks: the same token check (callerOf), the volume opened in the caller's
 * workspace and environment (both once per request), each block recorded in its workspace. Only the server's user (and root) can reach the socket:
 * the home is 0700.
 *
 * The socket is served by Node's own net.Server (no thread of its own); the reply is written
 * with one non-blocking sendmsg carrying the fd. A request is bounded in size and time; a
 * malformed one gets an INVALID reply, a connection that sends too much or too little is closed.
 */
export class LocalBlockServer {
  /** Random per process: a client uses the socket only if its replies carry the id it learned over HTTP. */
  readonly instance = randomBytes(16).toString("hex");
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly path: string,
    private readonly addon: Required<Pick<FuseFdAddon, "sendFd">>,
    private readonly auth: AuthStore,
    private readonly volumes: VolumeStore,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Listens at `path` (a stale socket there is removed: one server per home, services/home-lock.ts);
   * undefined, with a log line, if it cannot (path too long, no addon, listen failed).
   */
  static async start(path: string, addon: FuseFdAddon | undefined, auth: AuthStore, volumes: VolumeStore, log: FastifyBaseLogger): Promise<LocalBlockServer | undefined> {
    if (!addon?.sendFd) {
      log.info("local block reads off: the native addon is not built");
      return undefined;
    }
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      log.warn({ path }, "local block reads off: the socket path is longer than a unix socket address allows");
      return undefined;
    }
    const s = new LocalBlockServer(path, { sendFd: addon.sendFd.bind(addon) }, auth, volumes, log);
    try {
      await s.listen();
    } catch (err) {
      log.warn({ err, path }, "local block reads off: could not listen on the socket");
      return undefined;
    }
    return s;
  }

  get info(): LocalBlocksInfo {
    return { socket: this.path, instance: this.instance };
  }

  private listen(): Promise<void> {
    const server = createServer((socket) => this.serve(socket));
    // Connections past this are closed at once (their clients read over HTTP): a flood cannot exhaust the server's fds.
    server.maxConnections = MAX_CONNECTIONS;
    this.server = server;
    return listenUnixSocket(server, this.path, (err) => this.log.error({ err }, "local block socket failed"));
  }

  /** Stops listening, drops open connections and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    removeUnixSocket(this.path);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    // A deadline for the whole exchange (not an idle timer: a trickling peer must not hold it open).
    const deadline = setTimeout(() => socket.destroy(), LOCAL_BLOCKS.idleMs);
    deadline.unref();
    socket.on("close", () => clearTimeout(deadline));
    const chunks: Buffer[] = [];
    let held = 0;
    const onData = (chunk: Buffer) => {
      const nl = chunk.indexOf(10);
      const take = nl < 0 ? chunk : chunk.subarray(0, nl);
      chunks.push(take);
      held += take.length;
      if (held > LOCAL_BLOCKS.maxRequestBytes) {
        socket.off("data", onData);
        this.reply(socket, this.refusal("INVALID", `A request is at most ${LOCAL_BLOCKS.maxRequestBytes} bytes`));
        return;
      }
      if (nl < 0) return;
      // One request per connection: whatever follows it is not read.
      socket.off("data", onData);
      socket.pause();
      void this.answer(Buffer.concat(chunks).toString("utf8")).then(
        ({ reply, files }) => {
          this.reply(socket, reply, files.map((f) => f.fd));
          // The message holds its own references to the files: these are closed whether or not it was sent.
          for (const f of files) void f.close().catch(() => {});
        },
        (err) => {
          this.log.error({ err }, "local block request failed");
          this.reply(socket, this.refusal("INTERNAL", "The server could not answer"));
        },
      );
    };
    socket.on("data", onData);
    // A peer that closes before its newline sent no request: nothing to answer.
    socket.on("end", () => socket.destroy());
  }

  /**
   * The reply to one request line, with the blobs it gives opened (in the order of the reply's
   * blocks): authorized once for all its blocks, each block then looked up in the volume's
   * workspace on its own (a block not recorded there is NOT_FOUND and never opened).
   */
  private async answer(line: string): Promise<{ reply: LocalBlockReply; files: FileHandle[] }> {
    const req = parseLocalBlockRequest(line);
    if (typeof req === "string") return { reply: this.refusal("INVALID", req), files: [] };
    if (req.instance !== this.instance) return { reply: this.refusal("INSTANCE", "The request names another server process"), files: [] };
    let vol: OpenVolume;
    try {
      vol = await this.volumes.open(callerOf(this.auth, req.token, req.environment), req.volume);
    } catch (err) {
      if (err instanceof SiloError && (err.code === "AUTH" || err.code === "NOT_FOUND" || err.code === "INVALID")) {
        return { reply: this.refusal(err.code, err.message), files: [] };
      }
      throw err;
    }
    const settled = await Promise.allSettled(req.hashes.map((hash) => this.volumes.blockFile(vol, hash)));
    const blocks: LocalBlockResult[] = [];
    const files: FileHandle[] = [];
    for (const s of settled) {
      if (s.status === "fulfilled") {
        if (s.value) {
          blocks.push({ size: s.value.size });
          files.push(s.value.fh);
        } else blocks.push({ code: "NOT_LOCAL" });
      } else if (s.reason instanceof SiloError && s.reason.code === "NOT_FOUND") blocks.push({ code: "NOT_FOUND" });
      else {
        this.log.error({ err: s.reason }, "local block open failed");
        blocks.push({ code: "INTERNAL" });
      }
    }
    return { reply: { ok: true, instance: this.instance, blocks }, files };
  }

  private refusal(code: LocalBlockErrorCode, message: string): LocalBlockReply {
    return { ok: false, instance: this.instance, code, message };
  }

  /** Sends `reply` with `fds` attached in one sendmsg, then closes the connection. */
  private reply(socket: Socket, reply: LocalBlockReply, fds: number[] = []): void {
    const sock = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof sock === "number" && sock >= 0 && !socket.destroyed) {
      const bytes = Buffer.from(`${JSON.stringify(reply)}\n`);
      const sent = this.addon.sendFd(sock, bytes, fds);
      // A short or refused send (-EAGAIN: the peer is not reading) is not retried: the client falls back to HTTP.
      if (sent !== bytes.length) this.log.debug({ sent }, "local block reply not sent whole");
    }
    // Data already sent stays readable by the peer after this close (unix sockets do not reset).
    socket.destroy();
  }
}
