import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * A mount's default state dir (block cache, control socket), keyed by its mount point. Its own
 * module: the CLI needs it without loading the whole daemon.
 */
export function stateDirFor(dir: string): string {
  const key = createHash("sha256").update(resolve(dir)).digest("hex").slice(0, 16);
  return join(tmpdir(), "silo-mounts", key);
}
