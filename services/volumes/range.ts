import type { FastifyReply } from "fastify";
import { siloError } from "../errors.js";
import type { ByteRange } from "../blobs/index.js";

/**
 * Parses a single `Range: bytes=…` header against a size (`a-b`, `a-`, `-n`); undefined
 * when there is none. An end past the size is clipped; a range that starts at or past the end
 * (or a zero suffix) is RANGE_NOT_SATISFIABLE (416); multi-ranges and backwards ranges are INVALID.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) throw siloError("INVALID", `Unsupported Range header '${header}' (use bytes=start-end)`);
  const unsatisfiable = () => siloError("RANGE_NOT_SATISFIABLE", `Range '${header}' lies outside the ${size} bytes there are`);
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  if (m[2] !== "" && Number(m[2]) < start) throw siloError("INVALID", `Range '${header}' ends before it starts`);
  if (start >= size) throw unsatisfiable();
  return { start, end: m[2] === "" ? size : Math.min(Number(m[2]) + 1, size) };
}

/**
 * The request's range of `size` bytes (the whole when it sends none). A 416 carries
 * `Content-Range: bytes *\/SIZE`, as RFC 9110 asks, so the caller learns the size.
 */
export function requestedRange(header: string | undefined, size: number, reply: FastifyReply): ByteRange {
  try {
    return parseRange(header, size) ?? { start: 0, end: size };
  } catch (err) {
    if ((err as { code?: unknown }).code === "RANGE_NOT_SATISFIABLE") reply.header("content-range", `bytes */${size}`);
    throw err;
  }
}
