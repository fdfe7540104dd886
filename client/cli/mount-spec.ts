import { UsageError } from "./output.js";

/** Kinds `silo run` can mount; a bucket mount adds `"bucket"` here and its `-b` option. */
export type MountKind = "volume";

/** One `-v NAME:/path[:ro]` argument of `silo run`. */
export interface MountSpec {
  kind: MountKind;
  name: string;
  path: string;
  readOnly: boolean;
}

/** Parses `NAME:/absolute/path[:ro]`; the same syntax serves every mount kind. */
export function parseMountSpec(kind: MountKind, spec: string): MountSpec {
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
