import { VOLUME_LIMITS } from "../../protocol/volume.js";
import { invalid } from "../errors.js";

export const { maxNameBytes: MAX_NAME_BYTES, maxPathBytes: MAX_PATH_BYTES } = VOLUME_LIMITS;

/**
 * Normalises a path inside a volume to its stored form: relative, `/`-separated, no empty,
 * `.` or `..` segments; the root is "". A leading `/` means the volume root. `..` is refused
 * rather than resolved, so no spelling can reach outside the volume.
 */
export function normalizePath(raw: unknown): string {
  if (typeof raw !== "string") throw invalid(`Path must be a string, got ${typeof raw}`);
  if (raw.includes("\0")) throw invalid("Path must not contain NUL bytes");
  const parts: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw invalid(`Path ${JSON.stringify(raw)} must not contain '..'`);
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) throw invalid(`Path component '${part.slice(0, 40)}…' is longer than ${MAX_NAME_BYTES} bytes`);
    parts.push(part);
  }
  const path = parts.join("/");
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw invalid(`Path is longer than ${MAX_PATH_BYTES} bytes`);
  return path;
}

export { ancestors, baseName, joinPath, parentOf } from "../../protocol/volume.js";

/** Bounds of the subtree below directory `dir` (not the root) in path order: `dir/` < p < `dir0` ('0' follows '/'). */
export function subtreeBounds(dir: string): { low: string; high: string } {
  return { low: `${dir}/`, high: `${dir}0` };
}
