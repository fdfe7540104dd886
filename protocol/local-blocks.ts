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
 * LOCAL_BLOCKS.maxRequestBytes) naming up to LOCAL_BLOCKS.maxBlocks distinct blocks of one
 * volume; the server authorizes it once and answers one reply (JSON, one line, at most
 * LOCAL_BLOCKS.maxReplyBytes): a result per block, in the request's order, with the blob fds of
 * the blocks it gives attached to that one message in the same order, then closes. A refused
 * request, or a refused block, comes with no fd.
 */

import { BLOCK_SIZE } from "./volume.js";

export const LOCAL_BLOCKS_ROUTE = "/v1/local-blocks";

/** Environment variable that turns the fast path off in a client (`0`); anything else leaves it on. */
export const LOCAL_BLOCKS_ENV = "SILO_LOCAL_BLOCKS";

export const LOCAL_BLOCKS = {
  /** The socket's path under the server's home. */
  socketPath: "run/blocks.sock",
  /**
   * Most blocks one request names (512 MiB of 8 MiB blocks): bounds the request, the reply, the
   * fds of one message (the kernel's SCM_MAX_FD is 253) and the opens behind one answer.
   */
  maxBlocks: 64,
  /** A request longer than this (without its newline) is refused (INVALID) and the connection closed: maxBlocks hashes (67 bytes each in JSON) and the envelope. */
  maxRequestBytes: 8192,
  /** A reply is never longer than this: per block at most ~24 bytes (`{"code":"NOT_LOCAL"},`), plus the envelope. */
  maxReplyBytes: 4096,
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
  /** Absolute path of the socket for local block writes (LOCAL_PUT), when the server offers them. */
  putSocket?: string;
}

/** What a client asks for: blocks of one volume, with the same token and environment as over HTTP. */
export interface LocalBlockRequest {
  /** The instance id learned from `GET /v1/local-blocks`: a request meant for another process is refused (INSTANCE). */
  instance: string;
  /** `<token-id>:<token-secret>`, as in HTTP's `Authorization: Bearer`. */
  token: string;
  /** The environment (HTTP's `x-silo-environment`); absent: the default. */
  environment?: string;
  /** The volume (or network file system) id. */
  volume: string;
  /** The blocks' SHA-256s, lower-case hex: 1 to LOCAL_BLOCKS.maxBlocks, no two the same (else INVALID). */
  hashes: string[];
}

/**
 * Why a request (or one block of it) was refused. AUTH: unknown or revoked token. NOT_FOUND: no
 * such volume in the token's workspace/environment, or (a block) no such block there.
 * INVALID: a malformed request. NOT_LOCAL (a block): it has no file (kept inline; read it over
 * HTTP). INSTANCE: the request names another server process. INTERNAL: anything else.
 */
export type LocalBlockErrorCode = "AUTH" | "NOT_FOUND" | "INVALID" | "NOT_LOCAL" | "INSTANCE" | "INTERNAL";

/** One block's result: given (its blob's fd, O_RDONLY, comes with the reply; the block is the file's first `size` bytes), or refused (no fd). */
export type LocalBlockResult = { size: number } | { code: "NOT_FOUND" | "NOT_LOCAL" | "INTERNAL" };

export type LocalBlockReply =
  /** `blocks[i]` answers `hashes[i]`; the fds attached are those of the blocks given, in the same order. */
  | { ok: true; instance: string; blocks: LocalBlockResult[] }
  /** The whole request refused: no fd. */
  | { ok: false; instance: string; code: LocalBlockErrorCode; message: string };

const HASH = /^[0-9a-f]{64}$/;

/**
 * The fields of a request line (one JSON object, no newline) whose `keys` are non-empty strings
 * and whose `environment`, if present, is one too; or a message saying why it is malformed.
 */
function requestFields(line: string, keys: readonly string[]): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return "the request is not JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "the request is not a JSON object";
  const r = v as Record<string, unknown>;
  for (const key of keys) {
    if (typeof r[key] !== "string" || (r[key] as string).length === 0) return `'${key}' must be a non-empty string`;
  }
  if (r.environment !== undefined && (typeof r.environment !== "string" || r.environment.length === 0)) return "'environment' must be a non-empty string";
  return r;
}

/** The request in `line` (one JSON object, no newline), or a message saying why it is malformed. */
export function parseLocalBlockRequest(line: string): LocalBlockRequest | string {
  const r = requestFields(line, ["instance", "token", "volume"]);
  if (typeof r === "string") return r;
  const { hashes } = r;
  if (!Array.isArray(hashes) || hashes.length === 0 || hashes.length > LOCAL_BLOCKS.maxBlocks) return `'hashes' must list 1 to ${LOCAL_BLOCKS.maxBlocks} blocks`;
  for (const h of hashes) if (typeof h !== "string" || !HASH.test(h)) return "each of 'hashes' must be a SHA-256 in lower-case hex";
  if (new Set(hashes).size !== hashes.length) return "'hashes' must not name a block twice";
  return {
    instance: r.instance as string,
    token: r.token as string,
    environment: r.environment as string | undefined,
    volume: r.volume as string,
    hashes: hashes as string[],
  };
}

/**
 * The reply in `bytes` to a request for `count` blocks, or undefined if it is not one: an `ok`
 * reply must answer exactly `count` blocks, each with a size or a code.
 */
export function parseLocalBlockReply(bytes: Buffer, count: number): LocalBlockReply | undefined {
  try {
    const v = JSON.parse(bytes.toString("utf8")) as Partial<LocalBlockReply> | null;
    if (typeof v !== "object" || v === null || typeof v.instance !== "string") return undefined;
    if (v.ok === false) return typeof v.code === "string" ? (v as LocalBlockReply) : undefined;
    if (v.ok !== true || !Array.isArray(v.blocks) || v.blocks.length !== count) return undefined;
    for (const b of v.blocks as Array<Record<string, unknown> | null>) {
      if (typeof b !== "object" || b === null) return undefined;
      const sized = typeof b.size === "number" && Number.isSafeInteger(b.size) && b.size >= 0;
      if (sized === (typeof b.code === "string")) return undefined;
    }
    return v as LocalBlockReply;
  } catch {
    return undefined;
  }
}

/*
 * Local block writes (the reverse direction; docs/architecture.md, "Local block writes"): a
 * `volume put` on the server's host passes the server the open fd of its source file with a
 * request naming a range of it; the server reads the range itself, hashes each block (there is
 * no client hash to trust or not), stores the blocks it lacks, makes them durable as one group
 * (the files' fdatasyncs together, one fsync per directory, their rows in one transaction) and
 * only then answers the blocks' hashes and sizes. The client then commits a manifest that
 * references blocks the server already holds, over HTTP as always.
 *
 * A socket of its own (LOCAL_PUT.socketPath, announced as `putSocket`): the server reads these
 * requests natively (recvmsg, which keeps the SCM_RIGHTS fd), never through Node's socket reads,
 * which drop passed fds; the reads' socket stays as it is. One exchange per connection: one
 * request line (JSON, at most LOCAL_PUT.maxRequestBytes) with the fd attached, one reply line
 * (at most LOCAL_PUT.maxReplyBytes), then the server closes. A request whose fd is missing or not
 * a regular file, or whose range is not within the file, is INVALID.
 */

export const LOCAL_PUT = {
  /** The socket's path under the server's home. */
  socketPath: "run/blocks-put.sock",
  /** Most blocks one request covers (128 MiB): bounds the reply and the work behind one answer. */
  maxBlocks: 16,
  /** A request longer than this (without its newline) is refused (INVALID). */
  maxRequestBytes: 4096,
  /** A reply is never longer than this: per block its hash and size (~90 bytes as JSON), plus the envelope. */
  maxReplyBytes: 1024 + 16 * 128,
  /** The server gives up on a connection that has not sent its whole request within this long (it is sent with the connect). */
  receiveMs: 2_000,
  /** A client waits this long for each step (the reply comes after up to 128 MiB are read, written and synced); then HTTP. */
  clientTimeoutMs: 120_000,
  /** Requests a client keeps in flight: one's blocks are hashed and written while the other's are flushed. */
  inFlight: 2,
  /** Files smaller than this go over HTTP (one block's worth of bytes: below it the exchange saves nothing). */
  minFileBytes: BLOCK_SIZE,
} as const;

/** A local block write: blocks [offset, offset + length) of the file whose fd comes with the request. */
export interface LocalPutRequest {
  op: "put";
  /** As in LocalBlockRequest: the instance, token and environment of the HTTP side. */
  instance: string;
  token: string;
  environment?: string;
  /** The volume (or network file system) whose workspace stores the blocks. */
  volume: string;
  /** A multiple of BLOCK_SIZE. */
  offset: number;
  /** Positive, at most LOCAL_PUT.maxBlocks blocks; the range must lie within the file. */
  length: number;
}

/** Why a put was refused: as LocalBlockErrorCode, plus NO_SPACE (the server's disk is full: nothing was recorded). */
export type LocalPutErrorCode = LocalBlockErrorCode | "NO_SPACE";

/** One block of the range, in order; small ones (INLINE_BLOCK_MAX, protocol/volume.ts) are stored inline, as over HTTP. */
export interface LocalPutBlock {
  hash: string;
  size: number;
}

export type LocalPutReply =
  /** Every block of the range is durable on the server; `written`: how many it had to store (the others it held already). */
  | { ok: true; instance: string; blocks: LocalPutBlock[]; written: number }
  | { ok: false; instance: string; code: LocalPutErrorCode; message: string };

/** The put request in `line`, or a message saying why it is malformed. */
export function parseLocalPutRequest(line: string): LocalPutRequest | string {
  const r = requestFields(line, ["instance", "token", "volume"]);
  if (typeof r === "string") return r;
  if (r.op !== "put") return "'op' must be \"put\" on this socket";
  const { offset, length } = r;
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0 || offset % BLOCK_SIZE !== 0) return `'offset' must be a multiple of ${BLOCK_SIZE}`;
  if (typeof length !== "number" || !Number.isSafeInteger(length) || length <= 0 || length > LOCAL_PUT.maxBlocks * BLOCK_SIZE) {
    return `'length' must be between 1 and ${LOCAL_PUT.maxBlocks * BLOCK_SIZE}`;
  }
  return {
    op: "put",
    instance: r.instance as string,
    token: r.token as string,
    environment: r.environment as string | undefined,
    volume: r.volume as string,
    offset,
    length,
  };
}

/**
 * The put reply in `bytes`, or undefined if it is not one. An `ok` reply must list exactly the
 * blocks of [offset, offset + length), each with its size: anything else is no answer.
 */
export function parseLocalPutReply(bytes: Buffer, offset: number, length: number): LocalPutReply | undefined {
  try {
    const v = JSON.parse(bytes.toString("utf8")) as Partial<LocalPutReply> | null;
    if (typeof v !== "object" || v === null || typeof v.instance !== "string") return undefined;
    if (v.ok === false) return typeof v.code === "string" ? (v as LocalPutReply) : undefined;
    if (v.ok !== true || !Array.isArray(v.blocks) || typeof v.written !== "number") return undefined;
    if (v.blocks.length !== Math.ceil(length / BLOCK_SIZE)) return undefined;
    const end = offset + length;
    for (let i = 0; i < v.blocks.length; i++) {
      const b = v.blocks[i] as Partial<LocalPutBlock> | null;
      const size = Math.min(BLOCK_SIZE, end - (offset + i * BLOCK_SIZE));
      if (typeof b !== "object" || b === null || typeof b.hash !== "string" || !HASH.test(b.hash) || b.size !== size) return undefined;
    }
    return v as LocalPutReply;
  } catch {
    return undefined;
  }
}
