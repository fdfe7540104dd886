import { InvalidError } from "./errors.js";

/** Names of workspaces, environments and objects: 1–64 chars of [A-Za-z0-9._-]. */
export const NAME_PATTERN = "^[A-Za-z0-9._-]{1,64}$";
const NAME_RE = new RegExp(NAME_PATTERN);

/** Checks an object, environment or workspace name (the client before sending, the server on arrival). */
export function checkName(name: unknown, what = "name"): string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new InvalidError(
      `Invalid ${what} ${JSON.stringify(name)}: use 1-64 characters of letters, digits, '.', '_' or '-'`,
    );
  }
  return name;
}
