import { siloError } from "../errors.js";
import type { ByteRange } from "../blobs/index.js";

/**
 * Parses a single `Range: bytes=…` header against a size (`a-b`, `a-`, `-n`); undefined
 * when there is none. Ranges past the end are clipped; multi-ranges are refused.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) throw siloError("INVALID", `Unsupported Range header '${header}' (use bytes=start-end)`);
  if (m[1] === "") {
    const n = Number(m[2]);
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Math.min(Number(m[1]), size);
  const end = m[2] === "" ? size : Math.min(Number(m[2]) + 1, size);
  return { start, end: Math.max(start, end) };
}
