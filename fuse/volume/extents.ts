/**
 * The byte ranges written into one block of a file's upper file: sorted, disjoint and never
 * adjacent, kept as a flat list [start0, end0, start1, end1, …] of offsets within the block
 * (the journal records the list as it is). Pure: no I/O.
 */
export class Extents {
  private readonly flat: number[];

  constructor(flat: readonly number[] = []) {
    this.flat = [];
    for (let k = 0; k + 1 < flat.length; k += 2) this.add(flat[k]!, flat[k + 1]!);
  }

  /** The list as the journal records it. */
  toJSON(): number[] {
    return [...this.flat];
  }

  /** Number of disjoint ranges. */
  get count(): number {
    return this.flat.length / 2;
  }

  get empty(): boolean {
    return this.flat.length === 0;
  }

  /** Bytes the ranges cover together. */
  get bytes(): number {
    let n = 0;
    for (let k = 0; k < this.flat.length; k += 2) n += this.flat[k + 1]! - this.flat[k]!;
    return n;
  }

  /** Where the first range starts and the last ends ([0, 0] when empty). */
  get span(): [number, number] {
    return this.empty ? [0, 0] : [this.flat[0]!, this.flat[this.flat.length - 1]!];
  }

  /** Adds [start, end), merging it with the ranges it overlaps or touches. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const f = this.flat;
    // First range whose end reaches start (it touches or follows the new one).
    let lo = 0;
    while (lo < f.length && f[lo + 1]! < start) lo += 2;
    let hi = lo;
    while (hi < f.length && f[hi]! <= end) hi += 2;
    if (hi > lo) {
      start = Math.min(start, f[lo]!);
      end = Math.max(end, f[hi - 1]!);
    }
    f.splice(lo, hi - lo, start, end);
  }

  /** Drops everything at or past `end` (a truncate). */
  clip(end: number): void {
    const f = this.flat;
    let k = 0;
    while (k < f.length && f[k]! < end) k += 2;
    f.length = k;
    if (k > 0 && f[k - 1]! > end) f[k - 1] = end;
  }

  /** Whether [start, end) lies wholly inside written ranges. */
  covers(start: number, end: number): boolean {
    if (end <= start) return true;
    const f = this.flat;
    for (let k = 0; k < f.length; k += 2) if (f[k]! <= start && f[k + 1]! >= end) return true;
    return false;
  }

  /** Each written range as [start, end). */
  *ranges(): Generator<[number, number]> {
    for (let k = 0; k < this.flat.length; k += 2) yield [this.flat[k]!, this.flat[k + 1]!];
  }

  /**
   * [start, end) cut into consecutive pieces, each wholly written (`true`) or wholly not:
   * where a read takes its bytes from the upper file and where from the block's base.
   */
  pieces(start: number, end: number): Array<[number, number, boolean]> {
    const out: Array<[number, number, boolean]> = [];
    let at = start;
    for (let k = 0; k < this.flat.length && at < end; k += 2) {
      const s = this.flat[k]!;
      const e = this.flat[k + 1]!;
      if (e <= at) continue;
      if (s >= end) break;
      if (s > at) out.push([at, s, false]);
      const to = Math.min(e, end);
      out.push([Math.max(s, at), to, true]);
      at = to;
    }
    if (at < end) out.push([at, end, false]);
    return out;
  }

  copy(): Extents {
    return new Extents(this.flat);
  }
}
