import type { Change, ManifestEntry } from "../../protocol/volume.js";
import { invalid, notFound } from "../errors.js";
import { type ManifestStore, type Row, type VolumeState, toEntry } from "./manifest-store.js";
import { baseName, joinPath, normalizePath } from "./paths.js";

const ROOT: ManifestEntry = { path: "", type: "directory", mode: 0o755, size: 0, mtimeMs: 0 };

function liveEntry(store: ManifestStore, st: VolumeState, path: string): ManifestEntry | undefined {
  if (path === "") return ROOT;
  const row = store.lookup(st, st.latest, path);
  return row && toEntry(row);
}

const display = (path: string) => `/${path}`;

/** The changes of `rm [-r] path`: NotFound if missing; a non-empty directory needs `recursive`. */
export function planRemove(store: ManifestStore, st: VolumeState, rawPath: string, recursive: boolean): Change[] {
  const path = normalizePath(rawPath);
  const entry = liveEntry(store, st, path);
  if (!entry) throw notFound(`Path '${display(path)}'`);
  if (entry.type !== "directory") return [{ op: "delete", path }];
  const children = store.list(st, st.latest, path, false, "", recursive ? 1_000_000 : 1).entries;
  if (children.length > 0 && !recursive) throw invalid(`Directory '${display(path)}' is not empty (remove it recursively)`);
  // The root itself stays; removing it means removing what is in it.
  return path === "" ? children.map((c) => ({ op: "delete", path: c.path })) : [{ op: "delete", path }];
}

/**
 * The changes of `cp [-r] src… dst` with UNIX semantics: into `dst` if it is a directory
 * (or ends in `/`), else onto `dst` (one source only). Blocks are shared, never copied.
 */
export function planCopy(store: ManifestStore, st: VolumeState, srcPaths: string[], rawDst: string, recursive: boolean, now = Date.now()): Change[] {
  if (srcPaths.length === 0) throw invalid("Copy needs at least one source path");
  const dst = normalizePath(rawDst);
  const dstEntry = liveEntry(store, st, dst);
  const intoDir = dstEntry?.type === "directory" || (!dstEntry && rawDst.endsWith("/"));
  if (!intoDir && srcPaths.length > 1) throw invalid(`Target '${display(dst)}' is not a directory`);
  const changes: Change[] = [];
  for (const raw of srcPaths) {
    const src = normalizePath(raw);
    const entry = liveEntry(store, st, src);
    if (!entry) throw notFound(`Path '${display(src)}'`);
    if (entry.type === "directory" && !recursive) throw invalid(`'${display(src)}' is a directory (copy it recursively)`);
    if (src === "" && !intoDir) throw invalid("The volume root can only be copied into a directory");
    const target = intoDir ? joinPath(dst, baseName(src) || "root") : dst;
    if (entry.type === "directory" && (target === src || target.startsWith(`${src}/`) || src === "")) {
      throw invalid(`Can not copy '${display(src)}' into itself`);
    }
    if (target === src) throw invalid(`'${display(src)}' and '${display(target)}' are the same file`);
    changes.push({ op: "put", entry: { ...entry, path: target, mtimeMs: now } });
    if (entry.type === "directory") {
      for (const row of store.liveSubtree(st.volume, src) as Row[]) {
        changes.push({ op: "put", entry: { ...toEntry(row), path: target + row.path.slice(src.length) } });
      }
    }
  }
  return changes;
}
