import { FUSE_ROOT_ID } from "./abi.js";

/**
 * Inode numbers for the objects a file system names (tree nodes, paths): one number per key
 * while the kernel may refer to it, a new one after it was forgotten. Numbers are never reused,
 * so a stale number from before a forget can never reach another object.
 */
export class InodeMap<K> {
  private readonly byIno = new Map<number, K>();
  private readonly byKey = new Map<K, number>();
  private next = FUSE_ROOT_ID + 1;

  constructor(root: K) {
    this.byIno.set(FUSE_ROOT_ID, root);
    this.byKey.set(root, FUSE_ROOT_ID);
  }

  /**
   * The number for `key`, allocated if it has none. Call it in the last synchronous step
   * before answering: a forget handled in between would drop a number handed out earlier.
   */
  ino(key: K): number {
    let ino = this.byKey.get(key);
    if (ino === undefined) {
      ino = this.next++;
      this.byIno.set(ino, key);
      this.byKey.set(key, ino);
    }
    return ino;
  }

  /** The key behind `ino`, if the kernel may still use it. */
  get(ino: number): K | undefined {
    return this.byIno.get(ino);
  }

  /** The number `key` has now, without allocating one. */
  peek(key: K): number | undefined {
    return this.byKey.get(key);
  }

  /** The kernel forgot `ino`. */
  forget(ino: number): void {
    if (ino === FUSE_ROOT_ID) return;
    const key = this.byIno.get(ino);
    this.byIno.delete(ino);
    if (key !== undefined && this.byKey.get(key) === ino) this.byKey.delete(key);
  }

  /** Points `ino` at another key (a path-keyed file system after a rename). */
  rekey(ino: number, key: K): void {
    const old = this.byIno.get(ino);
    if (old !== undefined && this.byKey.get(old) === ino) this.byKey.delete(old);
    this.byIno.set(ino, key);
    this.byKey.set(key, ino);
  }

  entries(): IterableIterator<[number, K]> {
    return this.byIno.entries();
  }

  get size(): number {
    return this.byIno.size;
  }
}
