import { UsageError } from "./output.js";

/** Kinds `silo run` can mount. */
export type MountKind = "volume" | "bucket";

/** One `-v NAME:/path[:ro]` or `-b BUCKET[/prefix/]:/path[:ro]` argument of `silo run`. */
export interface MountSpec {
  kind: MountKind;
  /** Volume name, or bucket name. */
  name: string;
  path: string;
  readOnly: boolean;
  /** Buckets only: mount just the keys under this prefix (ends in `/`). */
  keyPrefix?: string;
}

/** Parses `NAME:/absolute/path[:ro]` (volumes) or `BUCKET[/key/prefix/]:/absolute/path[:ro]` (buckets). */
export function parseMountSpec(kind: MountKind, spec: string): MountSpec {
  if (kind === "bucket") {
    const m = /^([^:/]+)(?:\/([^:]*))?:(\/[^:]*)(?::(ro|rw))?$/.exec(spec);
    if (!m) throw new UsageError(`Invalid bucket mount '${spec}': expected BUCKET[/prefix/]:/absolute/path[:ro]`);
    return { kind, name: m[1]!, keyPrefix: m[2] || undefined, path: m[3]!, readOnly: m[4] === "ro" };
  }
  const m = /^([^:]+):(\/[^:]*)(?::(ro|rw))?$/.exec(spec);
  if (!m) throw new UsageError(`Invalid ${kind} mount '${spec}': expected NAME:/absolute/path[:ro]`);
  return { kind, name: m[1]!, path: m[2]!, readOnly: m[3] === "ro" };
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
