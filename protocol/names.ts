import { InvalidError } from "./errors.js";

/** The longest name, and the longest id (of an object, token or lease) a request may carry. */
export const MAX_NAME_CHARS = 64;
/** Names of workspaces, environments and objects: 1–64 chars of [A-Za-z0-9._-]. */
export const NAME_PATTERN = `^[A-Za-z0-9._-]{1,${MAX_NAME_CHARS}}$`;
const NAME_RE = new RegExp(NAME_PATTERN);

/** Checks an object, environment or workspace name (the client before sending, the server on arrival). */
export function checkName(name: unknown, what = "name"): string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new InvalidError(
      `Invalid ${what} ${JSON.stringify(name)}: use 1-${MAX_NAME_CHARS} characters of letters, digits, '.', '_' or '-'`,
    );
  }
  return name;
}
