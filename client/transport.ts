import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { ClientConfig } from "./config.js";
import { ConnectionError, errorFromResponse } from "../protocol/errors.js";
import { MSGPACK, envelope } from "../protocol/codec.js";
import { BufferConnection, type BufferResponse } from "./buffer-connection.js";
import { Agent, request } from "./undici-core.js";

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  /** Environment for this call; defaults to the client's. */
  environment?: string;
  query?: Query;
  signal?: AbortSignal;
}

export interface RawOptions extends CallOptions {
  body?: Buffer | Uint8Array | Readable | string;
  headers?: Record<string, string>;
  /** Return a redirect (3xx with a location) to the caller instead of failing on it. */
  redirects?: boolean;
}

/** A request to a URL the server handed out (a presigned object-store URL): no silo credentials. */
export interface ExternalRequest {
  method: Dispatcher.HttpMethod;
  url: string;
  headers?: Record<string, string>;
  body?: Buffer | Uint8Array;
}

/**
 * A response body's bytes, copied once into `into` if they fit, else into a buffer of their own
 * sized by the content-length (undici's arrayBuffer() zero-fills a buffer and copies into it: a
 * third of a cold read's CPU). A body that does not match its content-length is an error, never bytes.
 */
export async function bodyBytes(res: Dispatcher.ResponseData, into?: Buffer): Promise<Buffer> {
  const length = Number(res.headers["content-length"]);
  if (!Number.isSafeInteger(length) || length < 0) return Buffer.from(await res.body.arrayBuffer());
  const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  let at = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    if (at + b.length > length) throw new ConnectionError(`A response body is longer than its content-length (${length})`, "CONNECTION");
    b.copy(out, at);
    at += b.length;
  }
  if (at !== length) throw new ConnectionError(`A response body ended after ${at} of its ${length} bytes`, "CONNECTION");
  return out;
}

/** No bytes: `getInto` then reads every body into a buffer of its own. */
const NOTHING = Buffer.alloc(0);

/** HTTP/1.1 keep-alive transport: msgpack RPCs and raw byte streams, errors mapped to typed classes. */
export class Transport {
  private agent: Agent;
  private readonly auth: string;
  /** Idle connections of `getInto`. */
  private readonly idle: BufferConnection[] = [];
  /** Requests sent and not answered yet (`raw`), and when the last was (Date.now()). */
  private pending = 0;
  private lastAnswer = Date.now();

  constructor(readonly config: ClientConfig) {
    this.agent = newAgent();
    this.auth = `Bearer ${config.tokenId}:${config.tokenSecret}`;
  }

  /**
   * After more idle time than a kept-alive connection is kept (KEEP_ALIVE_MS), the next request
   * goes out on a new pool. undici closes idle connections on a timer, which a caller that
   * blocked its event loop for that long has not let run: its pool still holds connections the
   * server has closed meanwhile, and a POST written on one fails without being sent again
   * (mayResend). The old pool closes gracefully (a body still being read finishes).
   */
  private renewIfIdle(): void {
    if (this.pending > 0 || Date.now() - this.lastAnswer <= KEEP_ALIVE_MS) return;
    const old = this.agent;
    this.agent = newAgent();
    old.close().catch(() => {});
  }

  private url(path: string, query?: Query): string {
    let url = this.config.serverUrl.replace(/\/$/, "") + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    return url;
  }

  /** Sends a request and returns the raw response; non-2xx answers become typed errors. */
  async raw(method: Dispatcher.HttpMethod, path: string, opts: RawOptions = {}): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData | undefined;
    this.renewIfIdle();
    this.pending++;
    try {
      res = await this.send(method, path, opts);
    } finally {
      this.pending--;
      this.lastAnswer = Date.now();
    }
    if (res.statusCode >= 300 && !(opts.redirects && res.statusCode < 400 && res.headers.location)) {
      const buf = Buffer.from(await res.body.arrayBuffer());
      throw errorFromResponse(res.statusCode, decode(buf, res.headers["content-type"]));
    }
    return res;
  }

  /** Sends a request (once more on a new connection where mayResend allows). */
  private async send(method: Dispatcher.HttpMethod, path: string, opts: RawOptions): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData | undefined;
    for (let attempt = 0; res === undefined; attempt++) {
      try {
        res = await request(this.agent, this.url(path, opts.query), {
          method,
          body: opts.body,
          signal: opts.signal,
          headers: {
            authorization: this.auth,
            accept: MSGPACK,
            "x-silo-environment": opts.environment ?? this.config.environment,
            ...opts.headers,
          },
        });
      } catch (err) {
        if ((err as Error).name === "AbortError") throw err;
        if (attempt === 0 && mayResend(method, opts.body, err)) continue;
        throw new ConnectionError(`Could not reach the silo server at ${this.config.serverUrl}: ${(err as Error).message}`, "CONNECTION");
      }
    }
    return res;
  }

  /**
   * Sends a request to an object store URL the server signed (data paths that bypass the server);
   * failures become typed errors carrying the store's own message.
   */
  async external(req: ExternalRequest): Promise<Dispatcher.ResponseData> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.agent, req.url, { method: req.method, body: req.body, headers: req.headers });
    } catch (err) {
      throw new ConnectionError(`Could not reach the object store at ${new URL(req.url).origin}: ${(err as Error).message}`, "CONNECTION");
    }
    if (res.statusCode >= 300) {
      const text = (await res.body.text()).slice(0, 2000);
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.statusCode}`;
      const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
      const silo = res.statusCode === 404 ? "NOT_FOUND" : res.statusCode === 403 ? "FORBIDDEN" : res.statusCode === 400 ? "INVALID" : "UNAVAILABLE";
      throw errorFromResponse(res.statusCode, { error: { code: silo, message: `Object store refused ${req.method} (${code}): ${message}`.trim() } });
    }
    return res;
  }

  /**
   * A GET whose body the kernel reads straight into `into` (BufferConnection: no per-chunk
   * allocation or copy), for bulk downloads; undefined when the server is not plain http:
   * (then use `raw`). Non-2xx answers become typed errors, as with `raw` (a redirect too, unless
   * `redirects` asks for it).
   */
  async getInto(path: string, opts: CallOptions & Pick<RawOptions, "headers" | "redirects">, into: Buffer): Promise<BufferResponse | undefined> {
    const url = new URL(this.url(path, opts.query));
    if (url.protocol !== "http:") return undefined;
    const headers = { authorization: this.auth, accept: MSGPACK, "x-silo-environment": opts.environment ?? this.config.environment, ...opts.headers };
    let res: BufferResponse | undefined;
    for (let attempt = 0; res === undefined; attempt++) {
      let conn = this.idle.pop();
      while (conn && !conn.usable) conn = this.idle.pop();
      const reused = conn !== undefined;
      conn ??= await BufferConnection.open(url);
      try {
        res = await conn.get(url.host, url.pathname + url.search, headers, into);
      } catch (err) {
        // A kept-alive connection the server closed meanwhile: a GET is safe to send again, once.
        if (!reused || attempt > 0 || !(err as { answeredNothing?: boolean }).answeredNothing) throw err;
        continue;
      }
      if (conn.usable) this.idle.push(conn);
    }
    if (res.statusCode >= 300 && !(opts.redirects && res.statusCode < 400 && res.headers.location)) throw errorFromResponse(res.statusCode, decode(res.body ?? into.subarray(0, res.bytes), res.headers["content-type"]));
    return res;
  }

  /** A msgpack RPC: encodes `body`, decodes the answer. */
  async rpc<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
    const res = await this.raw(method, path, {
      ...opts,
      body: body === undefined ? undefined : envelope.pack(body),
      headers: body === undefined ? undefined : { "content-type": MSGPACK },
    });
    const buf = Buffer.from(await res.body.arrayBuffer());
    return decode(buf, res.headers["content-type"]) as T;
  }

  /**
   * A msgpack GET whose answer stays encoded: its msgpack bytes (in a buffer of their own), for a
   * caller that decodes only what it needs (a mount's directory listings: fuse/volume/listing.ts).
   * Over plain http it goes by `getInto` (the body read straight into its buffer, none of
   * undici's stream machinery per answer).
   */
  async getBytes(path: string, opts: CallOptions = {}): Promise<Buffer> {
    let bytes: Buffer;
    let type: string | string[] | undefined;
    const direct = await this.getInto(path, opts, NOTHING);
    if (direct) {
      bytes = direct.body ?? NOTHING;
      type = direct.headers["content-type"];
    } else {
      const res = await this.raw("GET", path, opts);
      type = res.headers["content-type"];
      bytes = await bodyBytes(res);
    }
    // Anything but msgpack (a proxy's JSON, say) is brought to msgpack here.
    return (Array.isArray(type) ? type[0] : type)?.startsWith(MSGPACK) ? bytes : Buffer.from(envelope.pack(decode(bytes, type)));
  }

  async close(): Promise<void> {
    for (const conn of this.idle.splice(0)) conn.close();
    await this.agent.close();
  }
}

/** How long undici keeps an idle connection open: below the server's keep-alive timeout (72 s). */
const KEEP_ALIVE_MS = 30_000;

/** Long-polls (blocking queue gets) may wait as long as the caller asked: no idle timeouts here. */
function newAgent(): Agent {
  return new Agent({ connections: 256, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: KEEP_ALIVE_MS });
}

/** Methods whose request may be sent twice with the effect of once (RFC 9110, 9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

/**
 * Whether a request that failed this way is sent once more, on a new connection. A kept-alive
 * connection the server closed while idle fails the next request on it: undici notices the close
 * only when its event loop runs, so a caller that blocked its own for longer than the server's
 * keep-alive timeout (72 s) meets it. EPIPE means the request could not be written: the server had
 * closed the socket, so it processed none of it, and any request is safe to resend. A reset or a
 * close before any answer may also follow a server that processed the request and then died:
 * only an idempotent one is resent then. A streamed body is gone after the first attempt.
 */
function mayResend(method: string, body: RawOptions["body"], err: unknown): boolean {
  const resendable = body === undefined || typeof body === "string" || body instanceof Uint8Array;
  const code = (err as { code?: string }).code;
  if (!resendable) return false;
  if (code === "EPIPE") return true;
  return IDEMPOTENT.has(method) && (code === "ECONNRESET" || code === "UND_ERR_SOCKET");
}

function decode(buf: Buffer, contentType: string | string[] | undefined): unknown {
  if (buf.length === 0) return undefined;
  const type = Array.isArray(contentType) ? contentType[0] : contentType;
  if (type?.startsWith(MSGPACK)) return envelope.unpack(buf);
  if (type?.startsWith("application/json")) return JSON.parse(buf.toString("utf8"));
  return buf;
}
