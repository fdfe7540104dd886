import { type Socket, connect } from "node:net";
import { ConnectionError, SiloError } from "../protocol/errors.js";

/** Most bytes of a response head (status line and headers) this connection takes. */
const HEAD_MAX = 16 * 1024;

/** A response read by `BufferConnection.get`: its body is `into.subarray(0, bytes)` (or `body` if it did not fit). */
export interface BufferResponse {
  statusCode: number;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** Body bytes, in the caller's buffer when they fitted. */
  bytes: number;
  /** The body, when it was larger than the caller's buffer (error answers are read whole too). */
  body?: Buffer;
}

/**
 * One keep-alive HTTP/1.1 connection (plain TCP) whose GET answers land straight in a buffer
 * the caller owns: the kernel reads the body into it (Node's `onread` user buffers), with no
 * per-chunk allocation and no copy in JS. What a large download needs to move a GiB with
 * little CPU; everything else goes through the general transport. Answers must carry a
 * Content-Length (no chunked encoding); one request at a time.
 */
export class BufferConnection {
  private readonly socket: Socket;
  /** Where the next read lands; swapped per phase of a response. */
  private target: Buffer;
  private onData: (n: number) => void = () => this.fail(new ConnectionError("The server sent bytes no request asked for", "CONNECTION"));
  private onEnd: (err: Error) => void = () => {};
  private broken: Error | undefined;
  private readonly scratch = Buffer.allocUnsafe(HEAD_MAX);

  private constructor(host: string, port: number) {
    this.target = this.scratch;
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => this.target,
        callback: (n: number) => {
          this.onData(n);
          return true;
        },
      },
    });
    this.socket.on("error", (err) => this.fail(new ConnectionError(`Could not reach the silo server at ${host}:${port}: ${err.message}`, "CONNECTION")));
    this.socket.on("end", () => this.fail(new ConnectionError("The silo server closed the connection", "CONNECTION")));
    this.socket.on("close", () => this.fail(new ConnectionError("The silo server closed the connection", "CONNECTION")));
  }

  /** Opens a connection to `url`'s host (http: only). */
  static async open(url: URL): Promise<BufferConnection> {
    const conn = new BufferConnection(url.hostname.replace(/^\[|\]$/g, ""), Number(url.port || 80));
    await new Promise<void>((ok, fail) => {
      conn.socket.once("connect", ok);
      conn.onEnd = fail;
    });
    conn.onEnd = () => {};
    // Idle in a pool, it must not keep the process alive; `get` holds it while a request runs.
    conn.socket.unref();
    return conn;
  }

  /** Whether the connection can take another request. */
  get usable(): boolean {
    return this.broken === undefined;
  }

  private fail(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    this.socket.destroy();
    this.onEnd(err);
  }

  close(): void {
    this.fail(new ConnectionError("Connection closed", "CONNECTION"));
  }

  /**
   * Sends a GET of `pathAndQuery` and reads the answer, its body into `into` (from offset 0).
   * A body larger than `into` (an error answer, say) is read whole into a new buffer instead.
   * `answeredNothing` on the rejection says whether the server had answered nothing yet (a
   * reused connection it had closed meanwhile: the GET can be retried on a new one).
   */
  get(host: string, pathAndQuery: string, headers: Record<string, string>, into: Buffer): Promise<BufferResponse> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<BufferResponse>((resolve, reject) => {
      let headLength = 0;
      let bodyAt = 0;
      let want = 0;
      let res: BufferResponse | undefined;
      let body: Buffer = into;
      const finish = () => {
        this.socket.unref();
        this.target = this.scratch;
        this.onData = (n) => this.fail(new ConnectionError(`The server sent ${n} bytes no request asked for`, "CONNECTION"));
        this.onEnd = () => {};
        if (res!.headers.connection?.toLowerCase() === "close") this.close();
        if (body !== into) res!.body = body.subarray(0, want);
        resolve(res!);
      };
      this.onEnd = (err) => {
        this.socket.unref();
        reject(Object.assign(err, { answeredNothing: headLength === 0 }));
      };
      this.socket.ref();
      this.target = this.scratch;
      this.onData = (n) => {
        if (res === undefined) {
          headLength += n;
          const end = this.scratch.subarray(0, headLength).indexOf("\r\n\r\n");
          if (end < 0) {
            if (headLength >= HEAD_MAX) this.fail(new SiloError(`The server's answer head is longer than ${HEAD_MAX} bytes`, "INTERNAL"));
            else this.target = this.scratch.subarray(headLength);
            return;
          }
          try {
            res = parseHead(this.scratch.toString("latin1", 0, end));
          } catch (err) {
            this.fail(err as Error);
            return;
          }
          want = res.bytes;
          if (want > into.length) body = Buffer.allocUnsafe(want);
          // Body bytes that came with the head: the only copy on this path, at most one read's worth.
          bodyAt = this.scratch.copy(body, 0, end + 4, headLength);
          if (headLength - end - 4 > want) {
            this.fail(new ConnectionError("The server sent more bytes than its Content-Length", "CONNECTION"));
            return;
          }
        } else {
          bodyAt += n;
        }
        if (bodyAt === want) return finish();
        // Reads land right after what arrived; never past the body, so the next answer is not mixed in.
        this.target = body.subarray(bodyAt, want);
      };
      const lines = [`GET ${pathAndQuery} HTTP/1.1`, `host: ${host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      this.socket.write(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
    });
  }
}

/** The status line and headers of an answer; its body length from Content-Length. */
function parseHead(head: string): BufferResponse {
  const [status, ...lines] = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(status ?? "");
  if (!m) throw new SiloError(`The server answered something that is not HTTP/1.1: '${(status ?? "").slice(0, 80)}'`, "INTERNAL");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (headers["transfer-encoding"] !== undefined || !/^\d+$/.test(headers["content-length"] ?? "")) {
    throw new SiloError("The server's answer has no Content-Length (this connection reads no chunked answers)", "INTERNAL");
  }
  return { statusCode: Number(m[1]), headers, bytes: Number(headers["content-length"]) };
}
