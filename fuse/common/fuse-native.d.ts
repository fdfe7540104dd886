// Types for the parts of fuse-native 2.2.6 that silo uses (the package ships none).
declare module "fuse-native" {
  export interface FuseStat {
    mode: number;
    uid?: number;
    gid?: number;
    size?: number;
    nlink?: number;
    ino?: number;
    blksize?: number;
    blocks?: number;
    atime?: Date | number;
    mtime?: Date | number;
    ctime?: Date | number;
  }
  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid?: number;
    flag?: number;
    namemax: number;
  }
  /** Callbacks take a negative errno (or 0) first. */
  export type Done = (err: number) => void;
  export type Answer<T> = (err: number, value?: T) => void;
  export interface FuseOps {
    init?(cb: Done): void;
    statfs?(path: string, cb: Answer<FuseStatfs>): void;
    getattr?(path: string, cb: Answer<FuseStat>): void;
    access?(path: string, mode: number, cb: Done): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
    open?(path: string, flags: number, cb: Answer<number>): void;
    create?(path: string, mode: number, cb: Answer<number>): void;
    /** `cb` gets the byte count (>= 0) or a negative errno. */
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
    release?(path: string, fd: number, cb: Done): void;
    flush?(path: string, fd: number, cb: Done): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: Done): void;
    fsyncdir?(path: string, datasync: boolean, fd: number, cb: Done): void;
    truncate?(path: string, size: number, cb: Done): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done): void;
    utimens?(path: string, atime: number, mtime: number, cb: Done): void;
    readlink?(path: string, cb: Answer<string>): void;
    chown?(path: string, uid: number, gid: number, cb: Done): void;
    chmod?(path: string, mode: number, cb: Done): void;
    mknod?(path: string, mode: number, dev: number, cb: Done): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
    getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer | null) => void): void;
    listxattr?(path: string, cb: (err: number, list?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: Done): void;
    unlink?(path: string, cb: Done): void;
    rename?(src: string, dest: string, cb: Done): void;
    link?(src: string, dest: string, cb: Done): void;
    symlink?(target: string, path: string, cb: Done): void;
    mkdir?(path: string, mode: number, cb: Done): void;
    rmdir?(path: string, cb: Done): void;
  }
  export interface FuseOptions {
    displayFolder?: boolean;
    debug?: boolean;
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    maxRead?: number;
    /** Seconds. fuse-native drops a falsy value (libfuse then uses 1 s): pass the string "0" for none. */
    attrTimeout?: number | string;
    entryTimeout?: number | string;
    /** Seconds after which auto_cache re-checks attributes at open (default: attrTimeout). */
    acAttrTimeout?: number | string;
    /** Per-op timeout in ms (false: none). */
    timeout?: number | false;
    uid?: number;
    gid?: number;
  }
  export default class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static readonly ENOENT: number;
    static readonly EPERM: number;
    static readonly EIO: number;
    static readonly EBADF: number;
    static readonly EACCES: number;
    static readonly EEXIST: number;
    static readonly EXDEV: number;
    static readonly ENOTDIR: number;
    static readonly EISDIR: number;
    static readonly EINVAL: number;
    static readonly ENOSPC: number;
    static readonly EROFS: number;
    static readonly ENOTEMPTY: number;
    static readonly ENODATA: number;
    static readonly EOPNOTSUPP: number;
    static readonly ENOSYS: number;
    static readonly ENAMETOOLONG: number;
    static readonly EBUSY: number;
  }
}
