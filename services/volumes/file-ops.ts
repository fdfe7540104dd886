import type { Change, ManifestEntry } from "../../protocol/volume.js";
import { invalid, notFound } from "../errors.js";
import type { ManifestStore } from "./manifest-store.js";
import { baseName, joinPath, normalizePath } from "./paths.js";

const ROOT: ManifestEntry = { path: "", type: "directory", mode: 0o755, size: 0, mtimeMs: 0 };

async function liveEntry(store: ManifestStore, volume: string, path: string): Promise<ManifestEntry | undefined> {
  if (path === "") return ROOT;
  return (await store.lookup(volume, undefined, path)).entry;
}

const display = (path: string) => `/${path}`;

/** The changes of `rm [-r] path`: NotFound if missing; a non-empty directory needs `recursive`. */
export async function planRemove(store: ManifestStore, volume: string, rawPath: string, recursive: boolean): Promise<Change[]> {
  const path = normalizePath(rawPath);
  const entry = await liveEntry(store, volume, path);
  if (!entry) throw notFound(`Path '${display(path)}'`);
  if (entry.type !== "directory") return [{ op: "delete", path }];
  const children = (await store.list(volume, undefined, path, false, "", recursive ? 1_000_000 : 1)).entries;
  if (children.length > 0 && !recursive) throw invalid(`Directory '${display(path)}' is not empty (remove it recursively)`);
  // The root itself stays; removing it means removing what is in it.
  return path === "" ? children.map((c) => ({ op: "delete", path: c.path })) : [{ op: "delete", path }];
}

/**
 * The changes of `cp [-r] src… dst` with UNIX semantics: into `dst` if it is a directory
 * (or ends in `/`), else onto `dst` (one source only). Blocks are shared, never copied.
 */
export async function planCopy(store: ManifestStore, volume: string, srcPaths: string[], rawDst: string, recursive: boolean, now = Date.now()): Promise<Change[]> {
  if (srcPaths.length === 0) throw invalid("Copy needs at least one source path");
  const dst = normalizePath(rawDst);
  const dstEntry = await liveEntry(store, volume, dst);
  const intoDir = dstEntry?.type === "directory" || (!dstEntry && rawDst.endsWith("/"));
  if (!intoDir && srcPaths.length > 1) throw invalid(`Target '${display(dst)}' is not a directory`);
  const changes: Change[] = [];
  for (const raw of srcPaths) {
    const src = normalizePath(raw);
    const entry = await liveEntry(store, volume, src);
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
      for (const child of await store.liveSubtree(volume, src)) {
        changes.push({ op: "put", entry: { ...child, path: target + child.path.slice(src.length) } });
      }
    }
  }
  return changes;
}
