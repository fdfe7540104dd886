import { InvalidError } from "./errors.js";

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Object, environment and workspace names: 1–64 chars of [A-Za-z0-9._-] (checked again by the server). */
export function checkName(name: string, what = "name"): string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new InvalidError(
      `Invalid ${what} ${JSON.stringify(name)}: use 1-64 characters of letters, digits, '.', '_' or '-'`,
      "INVALID",
    );
  }
  return name;
}
