/**
 * Glob patterns over `/`-separated paths, as NetworkFileSystem.listdir takes them:
 * `*` matches any run of characters inside one name, `?` one character, `**` (a whole path
 * segment) any number of directories, including none. Everything else matches itself.
 */

/** Whether a path argument is a glob (it holds `*` or `?`). */
export const isGlob = (path: string): boolean => /[*?]/.test(path);

/** The segments of a glob before its first wildcard segment: the directory to list below. */
export function globBase(pattern: string): string {
  const segments = pattern.split("/").filter((s) => s !== "" && s !== ".");
  const literal: string[] = [];
  for (const s of segments) {
    if (isGlob(s)) break;
    literal.push(s);
  }
  return literal.join("/");
}

const escapeRegExp = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, "\\$&");

/** A RegExp that matches whole root-relative paths (no leading `/`) against the pattern. */
export function globToRegExp(pattern: string): RegExp {
  const segments = pattern.split("/").filter((s) => s !== "" && s !== ".");
  let re = "";
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === "**") {
      // Zero or more whole directories; as the last segment, anything below.
      re += last ? ".*" : "(?:[^/]+/)*";
      return;
    }
    re += seg
      .split(/(\*+|\?)/)
      .map((part) => (part === "?" ? "[^/]" : part.startsWith("*") ? "[^/]*" : escapeRegExp(part)))
      .join("");
    if (!last) re += "/";
  });
  return new RegExp(`^${re}$`);
}
