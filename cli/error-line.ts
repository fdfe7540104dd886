/** Hints for system errors whose own message does not say what to do. */
const HINTS: Record<string, string> = {
  EADDRINUSE: "another process is listening there: stop it or pick another --port",
  EADDRNOTAVAIL: "this machine has no such address: check --host",
  EACCES: "permission denied",
  EROFS: "that file system is read-only: pick another --home",
  ENOTDIR: "a part of that path is a file, not a directory",
  ECONNREFUSED: "nothing is listening there: is 'silo serve' running, and is SILO_SERVER_URL right?",
  ENOTFOUND: "that host name does not resolve: check SILO_SERVER_URL",
  ENOSPC: "the disk is full",
};

const firstLine = (s: string) => s.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";

/**
 * One line for any failure: the message, what caused it (`fetch failed: connect ECONNREFUSED …`),
 * and a hint for common system errors; never a stack trace (that is `--debug`'s job).
 */
export function errorLine(err: unknown): string {
  const parts: string[] = [];
  let code: string | undefined;
  // Follow `cause` (undici's "fetch failed" hides the reason there); stop at a loop or a depth of 5.
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const message = e instanceof Error ? e.message : typeof e === "string" ? e : JSON.stringify(e);
    // Strip a leading "Error: " some libraries bake into the message, so it never reads "Error: Error: …".
    const line = firstLine(message).replace(/^(\w*Error: )+/, "");
    if (line && !parts.some((p) => p.includes(line))) parts.push(line);
    const c = (e as { code?: unknown }).code;
    if (typeof c === "string" && c in HINTS) code = c;
    e = e instanceof Error ? e.cause : undefined;
  }
  const text = parts.join(": ") || "unknown error";
  return code && !text.includes(HINTS[code]!) ? `${text} (${HINTS[code]})` : text;
}
