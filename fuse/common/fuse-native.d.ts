// Types for the parts of fuse-native 2.2 silo uses (the package ships none).
declare module "fuse-native" {
  export interface Stat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    nlink?: number;
    ino?: number;
    blksize?: number;
    blocks?: number;
    atime: Date | number;
    mtime: Date | number;
    ctime: Date | number;
  }
  export interface Statfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }
  type Cb = (err: number) => void;
  /** Errors are negative errno values (Fuse.ENOENT …); 0 is success. */
  export interface Operations {
    init?(cb: Cb): void;
    access?(path: string, mode: number, cb: Cb): void;
    statfs?(path: string, cb: (err: number, statfs?: Statfs) => void): void;
    getattr?(path: string, cb: (err: number, stat?: Stat) => void): void;
    flush?(path: string, fd: number, cb: Cb): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: Cb): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: Stat[]) => void): void;
    truncate?(path: string, size: number, cb: Cb): void;
    ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
    utimens?(path: string, atime: number, mtime: number, cb: Cb): void;
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    chown?(path: string, uid: number, gid: number, cb: Cb): void;
    chmod?(path: string, mode: number, cb: Cb): void;
    mknod?(path: string, mode: number, dev: number, cb: Cb): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
    getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer) => void): void;
    listxattr?(path: string, cb: (err: number, list?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: Cb): void;
    open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    release?(path: string, fd: number, cb: Cb): void;
    create?(path: string, mode: number, cb: (err: number, fd?: number) => void): void;
    unlink?(path: string, cb: Cb): void;
    rename?(src: string, dest: string, cb: Cb): void;
    link?(src: string, dest: string, cb: Cb): void;
    symlink?(target: string, path: string, cb: Cb): void;
    mkdir?(path: string, mode: number, cb: Cb): void;
    rmdir?(path: string, cb: Cb): void;
  }
  export interface FuseOptions {
    /** Per-op timeout in ms (default 15 s), or false for none. */
    timeout?: number | false;
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    /** Text after the name is passed through to libfuse (e.g. `silo,big_writes`). */
    fsname?: string;
    subtype?: string;
    entryTimeout?: number;
    attrTimeout?: number;
    autoCache?: boolean;
    kernelCache?: boolean;
    maxRead?: number;
    debug?: boolean;
    uid?: number;
    gid?: number;
  }
  export default class Fuse {
    constructor(mnt: string, ops: Operations, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
}
