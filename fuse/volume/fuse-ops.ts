import Fuse, { type FuseOps, type FuseStat } from "fuse-native";
import { FileContent } from "./file-content.js";
import type { MountedVolume } from "./mounted-volume.js";
import { FsError } from "../common/errno.js";
import { DirNode, FileNode, LinkNode, type Node, relPath } from "./namespace.js";

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_ACCMODE = 3;

/**
 * Translates FUSE calls onto a MountedVolume. Every op is async and answers through its
 * callback; an unexpected failure (e.g. the server is unreachable while fetching a block)
 * becomes EIO and is logged, never a crash.
 */
export function volumeFuseOps(mv: MountedVolume, opts: { readOnly: boolean; log: (msg: string) => void }): FuseOps {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const ns = mv.ns;

  /** Runs an op, answering `cb` with its value or a negative errno. */
  function run<T>(cb: (err: number, value?: T) => void, fn: () => T | Promise<T>): void {
    Promise.resolve()
      .then(fn)
      .then(
        (v) => cb(0, v),
        (err: unknown) => cb(errnoOf(err)),
      );
  }
  /** For read/write, whose callback takes a byte count or a negative errno. */
  function runCount(cb: (n: number) => void, fn: () => Promise<number>): void {
    fn().then(cb, (err: unknown) => cb(errnoOf(err)));
  }
  function errnoOf(err: unknown): number {
    if (err instanceof FsError) return err.errno;
    log(`I/O error: ${(err as Error).stack ?? String(err)}`);
    return Fuse.EIO;
  }
  const log = opts.log;
  const writable = () => {
    if (opts.readOnly) throw new FsError("EROFS");
  };
  const find = (path: string): Node => {
    const node = ns.lookup(relPath(path));
    if (!node) throw new FsError("ENOENT");
    return node;
  };
  const fileAt = (path: string): FileNode => {
    const node = find(path);
    if (node.type === "directory") throw new FsError("EISDIR");
    if (node.type !== "file") throw new FsError("EINVAL");
    return node;
  };
  const handle = (fd: number): FileNode => {
    const node = mv.handle(fd);
    if (!node) throw new FsError("EBADF");
    return node;
  };
  const truncate = async (path: string, node: FileNode, size: number) => {
    writable();
    await mv.store.truncate(node.content, size);
    node.mtimeMs = Date.now();
    mv.changed(relPath(path), node);
  };
  const stat = (node: Node): FuseStat => {
    const time = new Date(node.mtimeMs);
    const base = { uid, gid, atime: time, mtime: time, ctime: time };
    switch (node.type) {
      case "directory":
        return { ...base, mode: S_IFDIR | node.mode, size: 4096, nlink: 2 };
      case "symlink":
        return { ...base, mode: S_IFLNK | node.mode, size: Buffer.byteLength(node.target), nlink: 1 };
      default:
        return { ...base, mode: S_IFREG | node.mode, size: node.content.size, nlink: Math.max(1, node.nlink), blocks: Math.ceil(node.content.size / 512) };
    }
  };

  return {
    statfs: (_path, cb) =>
      run(cb, () => {
        const total = 2 ** 30; // 4 TiB of 4 KiB blocks: space is the server's concern
        const limit = Math.min(ns.inodeLimit, 2 ** 32 - 1);
        return { bsize: 4096, frsize: 4096, blocks: total, bfree: total, bavail: total, files: limit, ffree: Math.max(0, limit - ns.inodes), favail: Math.max(0, limit - ns.inodes), namemax: 255 };
      }),
    getattr: (path, cb) => run(cb, () => stat(find(path))),
    readdir: (path, cb) =>
      run(cb, () => {
        const dir = find(path);
        if (dir.type !== "directory") throw new FsError("ENOTDIR");
        return [".", "..", ...dir.children.keys()];
      }),
    readlink: (path, cb) =>
      run(cb, () => {
        const node = find(path);
        if (node.type !== "symlink") throw new FsError("EINVAL");
        return node.target;
      }),

    open: (path, flags, cb) =>
      run(cb, () => {
        const write = (flags & O_ACCMODE) !== 0;
        if (write) writable();
        return mv.openHandle(fileAt(path), write);
      }),
    create: (path, mode, cb) =>
      run(cb, () => {
        writable();
        const node = new FileNode(mode & 0o7777, Date.now(), new FileContent(0, []));
        ns.add(relPath(path), node);
        return mv.openHandle(node, true);
      }),
    release: (_path, fd, cb) => run(cb, () => mv.closeHandle(fd)),
    read: (_path, fd, buf, len, pos, cb) => runCount(cb, async () => mv.store.read(handle(fd).content, buf, len, pos)),
    write: (path, fd, buf, len, pos, cb) =>
      runCount(cb, async () => {
        writable();
        const node = handle(fd);
        const n = await mv.store.write(node.content, buf, len, pos);
        node.mtimeMs = Date.now();
        mv.changed(relPath(path), node);
        return n;
      }),
    truncate: (path, size, cb) => run(cb, () => truncate(path, fileAt(path), size)),
    ftruncate: (path, fd, size, cb) => run(cb, () => truncate(path, handle(fd), size)),
    // Data lives in the upper dir until a commit; durability is what commit() gives.
    flush: (_path, _fd, cb) => cb(0),
    fsync: (_path, _datasync, _fd, cb) => cb(0),
    fsyncdir: (_path, _datasync, _fd, cb) => cb(0),

    mkdir: (path, mode, cb) =>
      run(cb, () => {
        writable();
        ns.add(relPath(path), new DirNode(mode & 0o7777, Date.now()));
      }),
    rmdir: (path, cb) =>
      run(cb, async () => {
        writable();
        const node = find(path);
        if (node.type !== "directory") throw new FsError("ENOTDIR");
        if (node.children.size > 0) throw new FsError("ENOTEMPTY");
        ns.remove(relPath(path));
      }),
    unlink: (path, cb) =>
      run(cb, async () => {
        writable();
        if (find(path).type === "directory") throw new FsError("EISDIR");
        await mv.dropped(ns.remove(relPath(path)));
      }),
    rename: (src, dest, cb) =>
      run(cb, async () => {
        writable();
        await mv.dropped(ns.rename(relPath(src), relPath(dest)));
      }),
    symlink: (target, path, cb) =>
      run(cb, () => {
        writable();
        ns.add(relPath(path), new LinkNode(target, 0o777, Date.now()));
      }),
    link: (src, dest, cb) =>
      run(cb, () => {
        writable();
        const node = find(src);
        if (node.type === "directory") throw new FsError("EPERM");
        ns.add(relPath(dest), node);
        if (node.type === "file") {
          node.nlink++;
          mv.changed(relPath(dest), node);
        }
      }),
    chmod: (path, mode, cb) =>
      run(cb, () => {
        writable();
        const node = find(path);
        node.mode = mode & 0o7777;
        mv.changed(relPath(path), node);
      }),
    // Ownership is not stored (every file belongs to the mount's user); accepting it keeps cp -a, tar and rsync happy.
    chown: (_path, _uid, _gid, cb) => run(cb, () => writable()),
    // fuse-native 2.2.6 passes atime in both slots: the one time we get is used as the mtime.
    utimens: (path, atime, _mtime, cb) =>
      run(cb, () => {
        writable();
        const node = find(path);
        node.mtimeMs = Math.round(atime);
        mv.changed(relPath(path), node);
      }),
    // No extended attributes: answer like a file system without them.
    getxattr: (_path, _name, _position, cb) => cb(Fuse.ENODATA),
    listxattr: (_path, cb) => cb(0, []),
    setxattr: (_path, _name, _value, _position, _flags, cb) => cb(Fuse.EOPNOTSUPP),
    removexattr: (_path, _name, cb) => cb(Fuse.ENODATA),
  };
}
