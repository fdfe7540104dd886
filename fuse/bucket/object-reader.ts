import type { BucketS3 } from "./bucket-s3.js";
import { ChunkPool } from "./chunk-pool.js";

const MiB = 1024 * 1024;
/** Ranged GET size once a reader is sequential. */
const SEQUENTIAL_CHUNK = 16 * MiB;
/** Chunks kept in flight ahead of a sequential reader (grows from 1 as the streak lasts); more only crowds the server. */
const MAX_WINDOW = 4;
/** A read that does not follow the previous one fetches at least this much. */
const RANDOM_CHUNK = 256 * 1024;
/** The first read of a file fetches this much: small files take one request. */
const FIRST_CHUNK = 1 * MiB;
/** Reads this close to the previous end still count as sequential (the kernel's readahead reorders a little). */
const SEQUENTIAL_SLACK = 2 * MiB;
const MAX_SEGMENTS = MAX_WINDOW + 8;

interface Segment {
  start: number;
  end: number;
  data: Promise<Buffer>;
  /** A pooled buffer behind `data`, given back once the segment is dropped and no read copies from it. */
  pooled?: Buffer;
  readers: number;
  dropped: boolean;
}

/** Read-ahead chunk buffers shared by every reader of a mount. */
export const readAheadPool = () => new ChunkPool(SEQUENTIAL_CHUNK, 2 * MAX_WINDOW);

/**
 * Serves reads of one object by ranged GETs with read-ahead: a sequential reader gets a
 * growing window of 16 MiB chunks fetched in parallel ahead of it; a random reader gets
 * small ranges. A few recent segments are kept, so re-reads and slight reordering are free.
 */
export class ObjectReader {
  private segments: Segment[] = [];
  private lastEnd = -1;
  private streak = 0;
  /** End of the contiguous run of read-ahead chunks. */
  private aheadTo = 0;

  constructor(
    private readonly s3: BucketS3,
    private readonly key: string,
    readonly size: number,
    private readonly pool: ChunkPool,
  ) {}

  /** Copies up to `len` bytes at `pos` into `dest`; returns how many (0 at end of file). */
  async readInto(dest: Buffer, pos: number, len: number): Promise<number> {
    const end = Math.min(pos + len, this.size);
    if (pos >= end) return 0;
    this.track(pos, end);
    let at = pos;
    while (at < end) {
      const seg = this.segmentFor(at);
      seg.readers++;
      try {
        const data = await seg.data.catch((err: unknown) => {
          this.drop(seg);
          throw err;
        });
        const n = Math.min(end, seg.start + data.length) - at;
        if (n <= 0) break; // object shorter than its listed size
        data.copy(dest, at - pos, at - seg.start, at - seg.start + n);
        at += n;
      } finally {
        seg.readers--;
        this.recycle(seg);
      }
    }
    return at - pos;
  }

  /** The file was closed: its buffers go back to the pool. */
  close(): void {
    for (const seg of this.segments) this.drop(seg);
  }

  private track(pos: number, end: number): void {
    const sequential = this.lastEnd >= 0 && Math.abs(pos - this.lastEnd) <= SEQUENTIAL_SLACK;
    this.streak = sequential ? this.streak + 1 : 0;
    this.lastEnd = Math.max(end, sequential ? this.lastEnd : 0);
    if (!sequential) return;
    if (pos < this.aheadTo - MAX_WINDOW * SEQUENTIAL_CHUNK || pos > this.aheadTo) this.aheadTo = pos;
    const window = Math.min(MAX_WINDOW, 1 + Math.floor(this.streak / 4));
    const target = Math.min(this.size, pos + window * SEQUENTIAL_CHUNK);
    while (this.aheadTo < target) {
      const have = this.covering(this.aheadTo);
      if (have) {
        this.aheadTo = have.end;
        continue;
      }
      // Chunk ends on multiples of the chunk size: they line up with 8 MiB multipart parts.
      const end = Math.min(this.size, (Math.floor(this.aheadTo / SEQUENTIAL_CHUNK) + 1) * SEQUENTIAL_CHUNK);
      this.fetch(this.aheadTo, end);
      this.aheadTo = end;
    }
    // Drop what the reader has passed.
    for (const seg of this.segments) if (seg.end <= pos - SEQUENTIAL_CHUNK) this.drop(seg);
  }

  private drop(seg: Segment): void {
    this.segments = this.segments.filter((s) => s !== seg);
    seg.dropped = true;
    this.recycle(seg);
  }

  private recycle(seg: Segment): void {
    const buf = seg.pooled;
    if (!buf || !seg.dropped || seg.readers > 0) return;
    seg.pooled = undefined;
    const giveBack = () => this.pool.give(buf);
    seg.data.then(giveBack, giveBack); // a fetch still running keeps writing into it until it settles
  }

  private covering(at: number): Segment | undefined {
    return this.segments.find((s) => s.start <= at && at < s.end);
  }

  private segmentFor(at: number): Segment {
    const found = this.covering(at);
    if (found) return found;
    const first = this.streak === 0 && at === 0;
    return this.fetch(at, Math.min(this.size, at + (first ? FIRST_CHUNK : RANDOM_CHUNK)));
  }

  private fetch(start: number, end: number): Segment {
    const pooled = end - start === this.pool.chunkSize ? this.pool.take() : undefined;
    const seg: Segment = { start, end, data: this.s3.getRange(this.key, start, end, pooled), pooled, readers: 0, dropped: false };
    seg.data.catch(() => {}); // observed by the reader that needs it
    this.segments.push(seg);
    if (this.segments.length > MAX_SEGMENTS) this.drop(this.segments[0]!);
    return seg;
  }
}
