/**
 * Local block reads ("short-circuit" reads, as HDFS's): a client on the server's own host asks
 * the server's unix socket for a block and gets the blob file's open descriptor back (SCM_RIGHTS)
 * instead of its bytes over HTTP; it then reads the block from the file itself, one copy, no
 * server event loop in between (docs/architecture.md, "Local block reads").
 *
 * Discovery: `GET /v1/local-blocks` (authenticated) answers LocalBlocksInfo: the socket's path
 * and the serving process's random instance id. A client uses the socket only if its reply
 * carries that same id, so a socket at the same path served by another process (another
 * server on the client's host while the HTTP server is remote, a restarted server) is never used.
 *
 * One exchange per connection: the client sends one request (JSON, one line, at most
 * LOCAL_BLOCKS.maxRequestBytes), the server answers one reply (JSON, one line, at most
 * LOCAL_BLOCKS.maxReplyBytes) with the blob's fd attached when `ok`, then closes.
 */

export const LOCAL_BLOCKS_ROUTE = "/v1/local-blocks";

/** Environment variable that turns the fast path off in a client (`0`); anything else leaves it on. */
export const LOCAL_BLOCKS_ENV = "SILO_LOCAL_BLOCKS";

export const LOCAL_BLOCKS = {
  /** The socket's path under the server's home. */
  socketPath: "run/blocks.sock",
  /** A request longer than this (without its newline) is refused (INVALID) and the connection closed. */
  maxRequestBytes: 4096,
  /** A reply is never longer than this. */
  maxReplyBytes: 1024,
  /** The server closes a connection that has not sent its whole request within this long. */
  idleMs: 5_000,
  /** A client gives up on each step (connect, send, receive) after this long and falls back to HTTP. */
  clientTimeoutMs: 5_000,
} as const;

/** `GET /v1/local-blocks`: where the socket is, or `{}` when this server offers none. */
export interface LocalBlocksInfo {
  /** Absolute path of the server's unix socket. */
  socket?: string;
  /** Random per-process id; the socket's replies carry it. */
  instance?: string;
}

/** What a client asks for: one block of one volume, with the same token and environment as over HTTP. */
export interface LocalBlockRequest {
  /** The instance id learned from `GET /v1/local-blocks`: a request meant for another process is refused (INSTANCE). */
  instance: string;
  /** `<token-id>:<token-secret>`, as in HTTP's `Authorization: Bearer`. */
  token: string;
  /** The environment (HTTP's `x-silo-environment`); absent: the default. */
  environment?: string;
  /** The volume (or network file system) id. */
  volume: string;
  /** The block's SHA-256, lower-case hex. */
  hash: string;
}

/**
 * Why a request was refused. AUTH: unknown or revoked token. NOT_FOUND: no such volume in the
 * token's workspace/environment, or no such block there. INVALID: a malformed request.
 * NOT_LOCAL: the block has no file (kept inline; read it over HTTP). INSTANCE: the request
 * names another server process. INTERNAL: anything else.
 */
export type LocalBlockErrorCode = "AUTH" | "NOT_FOUND" | "INVALID" | "NOT_LOCAL" | "INSTANCE" | "INTERNAL";

export type LocalBlockReply =
  /** The blob's fd (O_RDONLY) comes with this reply; the block is its first `size` bytes. */
  | { ok: true; instance: string; size: number }
  | { ok: false; instance: string; code: LocalBlockErrorCode; message: string };

const HASH = /^[0-9a-f]{64}$/;

/** The request in `line` (one JSON object, no newline), or a message saying why it is malformed. */
export function parseLocalBlockRequest(line: string): LocalBlockRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return "the request is not JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "the request is not a JSON object";
  const r = v as Record<string, unknown>;
  for (const key of ["instance", "token", "volume", "hash"] as const) {
    if (typeof r[key] !== "string" || (r[key] as string).length === 0) return `'${key}' must be a non-empty string`;
  }
  if (r.environment !== undefined && (typeof r.environment !== "string" || r.environment.length === 0)) return "'environment' must be a non-empty string";
  if (!HASH.test(r.hash as string)) return "'hash' must be a SHA-256 in lower-case hex";
  return {
    instance: r.instance as string,
    token: r.token as string,
    environment: r.environment as string | undefined,
    volume: r.volume as string,
    hash: r.hash as string,
  };
}

/** The reply in `bytes`, or undefined if it is not one. */
export function parseLocalBlockReply(bytes: Buffer): LocalBlockReply | undefined {
  try {
    const v = JSON.parse(bytes.toString("utf8")) as Partial<LocalBlockReply> | null;
    if (typeof v !== "object" || v === null || typeof v.instance !== "string") return undefined;
    if (v.ok === true && typeof v.size === "number" && Number.isSafeInteger(v.size) && v.size >= 0) return v as LocalBlockReply;
    if (v.ok === false && typeof v.code === "string") return v as LocalBlockReply;
    return undefined;
  } catch {
    return undefined;
  }
}
