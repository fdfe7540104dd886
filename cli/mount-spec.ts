import { UsageError } from "./output.js";

/** Kinds `silo run` can mount. */
export type MountKind = "volume" | "bucket" | "nfs";

/** One `-v NAME:/path[:ro]` or `-b BUCKET[/prefix/]:/path[:ro]` argument of `silo run`. */
export interface MountSpec {
  kind: MountKind;
  /** Volume name, or bucket name. */
  name: string;
  path: string;
  readOnly: boolean;
  /** Buckets only: mount just the keys under this prefix (ends in `/`). */
  keyPrefix?: string;
  /** Buckets only: the silo secret holding the credentials (`:secret=NAME`, else `silo run --secret`). */
  secret?: string;
}

/** The `:ro`, `:rw` and (buckets) `:secret=NAME` suffixes of a spec. */
function parseSuffixes(kind: MountKind, spec: string, suffixes: string): { readOnly: boolean; secret?: string } {
  let readOnly = false;
  let secret: string | undefined;
  for (const part of suffixes.split(":").filter(Boolean)) {
    if (part === "ro" || part === "rw") readOnly = part === "ro";
    else if (kind === "bucket" && part.startsWith("secret=") && part.length > "secret=".length) secret = part.slice("secret=".length);
    else throw new UsageError(`Invalid ${kind} mount '${spec}': unknown option '${part}' (${kind === "bucket" ? "ro, rw or secret=NAME" : "ro or rw"})`);
  }
  return { readOnly, secret };
}

/**
 * Parses `NAME:/absolute/path[:ro]` (volumes, network file systems) or
 * `BUCKET[/prefix/]:/absolute/path[:ro][:secret=NAME]` (buckets).
 */
export function parseMountSpec(kind: MountKind, spec: string): MountSpec {
  if (kind === "bucket") {
    const m = /^([^:/]+)(?:\/([^:]*))?:(\/[^:]*)((?::[^:]*)*)$/.exec(spec);
    if (!m) throw new UsageError(`Invalid bucket mount '${spec}': expected BUCKET[/prefix/]:/absolute/path[:ro][:secret=NAME]`);
    const { readOnly, secret } = parseSuffixes(kind, spec, m[4]!);
    return { kind, name: m[1]!, keyPrefix: m[2] || undefined, path: m[3]!, readOnly, ...(secret ? { secret } : {}) };
  }
  const m = /^([^:]+):(\/[^:]*)((?::[^:]*)*)$/.exec(spec);
  if (!m) throw new UsageError(`Invalid ${kind} mount '${spec}': expected NAME:/absolute/path[:ro]`);
  return { kind, name: m[1]!, path: m[2]!, readOnly: parseSuffixes(kind, spec, m[3]!).readOnly };
}

/** Commander collector for repeatable mount options. */
export const collectMounts =
  (kind: MountKind) =>
  (value: string, previous: MountSpec[] = []): MountSpec[] => [...previous, parseMountSpec(kind, value)];

/** Rejects two mounts at one path (or one inside another, which would hide it). */
export function checkMountPaths(specs: MountSpec[]): void {
  const paths = specs.map((s) => s.path.replace(/\/+$/, "") || "/");
  for (const a of paths)
    for (const b of paths) {
      if (a !== b && b.startsWith(`${a}/`)) throw new UsageError(`Mount ${b} is inside mount ${a}`);
    }
  if (new Set(paths).size !== paths.length) throw new UsageError("Two mounts at the same path");
  if (paths.includes("/")) throw new UsageError("Cannot mount over /");
}
