import { FUSE_ROOT_ID } from "./abi.js";

/** Where each key keeps the number it was given (undefined: none). */
export interface InoSlots<K> {
  get(key: K): number | undefined;
  set(key: K, ino: number | undefined): void;
  /**
   * A key keeps its number after the kernel forgot it: the next lookup answers the same one, as
   * ext4's numbers stay (a `stat` before and after the kernel dropped its caches agree, so tools
   * that find hard links by inode number see one file). Not for a Map, which would grow for ever.
   */
  readonly stable?: boolean;
}

/** Keys of any kind: a Map from key to number. */
class MapSlots<K> implements InoSlots<K> {
  private readonly byKey = new Map<K, number>();
  get(key: K): number | undefined {
    return this.byKey.get(key);
  }
  set(key: K, ino: number | undefined): void {
    if (ino === undefined) this.byKey.delete(key);
    else this.byKey.set(key, ino);
  }
}

/**
 * Objects that carry their number in a field of their own: giving a number costs a store, not a
 * hash-table entry (a listing of 100,000 names gave each one, and the table's growth was a
 * quarter of the daemon's CPU in a `find`).
 */
export const inoFieldSlots: InoSlots<{ ino: number | undefined }> = {
  stable: true,
  get: (key) => key.ino,
  set: (key, ino) => {
    key.ino = ino;
  },
};

/**
 * Inode numbers for the objects a file system names (tree nodes, paths): one number per key
 * while the kernel may refer to it; after it was forgotten the same one again with stable slots,
 * else a new one. Numbers are never reused for another key, so a stale number from before a
 * forget can never reach another object.
 *
 * A key may also hold a number the kernel was only shown, not given (`reserve`: the d_ino of a
 * plain READDIR entry, to which the kernel takes no reference): the key keeps it, so a later
 * lookup answers the same number, but it is not registered until then.
 */
export class InodeMap<K> {
  /** Numbers the kernel may hold (given by `ino`, until forgotten). */
  private readonly byIno = new Map<number, K>();
  private next = FUSE_ROOT_ID + 1;

  constructor(
    root: K,
    private readonly slots: InoSlots<K> = new MapSlots<K>(),
  ) {
    this.byIno.set(FUSE_ROOT_ID, root);
    slots.set(root, FUSE_ROOT_ID);
  }

  /**
   * The number for `key`, allocated if it has none, and registered: `get` finds the key by it
   * until it is forgotten. Call it in the last synchronous step before answering: a forget
   * handled in between would drop a number handed out earlier.
   */
  ino(key: K): number {
    const ino = this.reserve(key);
    if (this.byIno.get(ino) !== key) this.byIno.set(ino, key);
    return ino;
  }

  /** The number `key` has or will get from `ino`, allocated if it has none, not registered. */
  reserve(key: K): number {
    let ino = this.slots.get(key);
    if (ino === undefined) {
      ino = this.next++;
      this.slots.set(key, ino);
    }
    return ino;
  }

  /** `count` consecutive unused numbers, the first returned, for keys still to be made (a listing's names): none is registered. */
  reserveRange(count: number): number {
    const first = this.next;
    this.next += count;
    return first;
  }

  /** The key behind `ino`, if the kernel may still use it. */
  get(ino: number): K | undefined {
    return this.byIno.get(ino);
  }

  /** The registered number `key` has now, without allocating one. */
  peek(key: K): number | undefined {
    const ino = this.slots.get(key);
    return ino !== undefined && this.byIno.get(ino) === key ? ino : undefined;
  }

  /** The kernel forgot `ino`. */
  forget(ino: number): void {
    if (ino === FUSE_ROOT_ID) return;
    const key = this.byIno.get(ino);
    this.byIno.delete(ino);
    if (!this.slots.stable && key !== undefined && this.slots.get(key) === ino) this.slots.set(key, undefined);
  }

  /** Points `ino` at another key (a path-keyed file system after a rename). */
  rekey(ino: number, key: K): void {
    const old = this.byIno.get(ino);
    if (old !== undefined && this.slots.get(old) === ino) this.slots.set(old, undefined);
    this.byIno.set(ino, key);
    this.slots.set(key, ino);
  }

  /** The registered numbers and their keys. */
  entries(): IterableIterator<[number, K]> {
    return this.byIno.entries();
  }

  get size(): number {
    return this.byIno.size;
  }
}
