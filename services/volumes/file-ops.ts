import { randomBytes } from "node:crypto";
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
export async function planCopy(store: ManifestStore, volume: string, srcPaths: string[], rawDst: string, recursive: boolean, now: number): Promise<Change[]> {
  if (srcPaths.length === 0) throw invalid("Copy needs at least one source path");
  const dst = normalizePath(rawDst);
  const dstEntry = await liveEntry(store, volume, dst);
  const intoDir = dstEntry?.type === "directory" || (!dstEntry && rawDst.endsWith("/"));
  if (!intoDir && srcPaths.length > 1) throw invalid(`Target '${display(dst)}' is not a directory`);
  const changes: Change[] = [];
  const links = new Map<string, string>();
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
    const nowNs = (BigInt(Math.trunc(now)) * 1_000_000n).toString();
    changes.push({ op: "put", entry: relink({ ...entry, path: target, mtimeMs: now, mtimeNs: nowNs, ctimeNs: nowNs }, links) });
    if (entry.type === "directory") {
      for (const child of await store.liveSubtree(volume, src)) {
        changes.push({ op: "put", entry: relink({ ...child, path: target + child.path.slice(src.length) }, links) });
      }
    }
  }
  return changes;
}

/**
 * A copy is a new inode: its hard links get a fresh linkId (the same for all names of one inode
 * copied together, as `cp -a` keeps links inside what it copies), never the original's.
 */
function relink(entry: ManifestEntry, links: Map<string, string>): ManifestEntry {
  if (entry.linkId === undefined) return entry;
  let id = links.get(entry.linkId);
  if (id === undefined) {
    id = randomBytes(12).toString("base64url");
    links.set(entry.linkId, id);
  }
  return { ...entry, linkId: id };
}
