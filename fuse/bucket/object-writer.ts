import { FsError, NegativeErrno } from "../common/errno.js";
import { type BucketS3, toFsError } from "./bucket-s3.js";

/** Parts being uploaded at once per file; a writer waits (backpressure) beyond this. */
const MAX_PARTS_IN_FLIGHT = 4;
/** Initial buffer of a new file (grows ×4 up to the part size). */
const FIRST_BUFFER = 128 * 1024;
/** S3 allows 10,000 parts: part sizes double every 1,000 parts so huge files still fit. */
const PARTS_PER_SIZE_STEP = 1000;

/**
 * A new object being written: bytes must arrive in order from offset 0; full parts are
 * uploaded (multipart, in parallel) while writing; `finish()` completes the upload, and only
 * then does the object exist in the bucket (atomically, in full). A file smaller than one part
 * is sent with a single PUT.
 */
export class ObjectWriter {
  size = 0;
  private part: Buffer | undefined;
  private fill = 0;
  private partNumber = 0;
  private uploadId: Promise<string> | undefined;
  private readonly parts: Array<{ PartNumber: number; ETag: string }> = [];
  private readonly inflight = new Set<Promise<void>>();
  private failed: FsError | undefined;
  private finishing: Promise<void> | undefined;

  constructor(
    private readonly s3: BucketS3,
    readonly key: string,
    private readonly partSize: number,
  ) {}

  get finished(): boolean {
    return this.finishing !== undefined;
  }

  async write(buf: Buffer, len: number, pos: number): Promise<void> {
    if (this.finishing) throw new FsError(NegativeErrno.EPERM, `${this.key}: written after close/fsync (the object is already uploaded)`);
    if (pos !== this.size) throw new FsError(NegativeErrno.EPERM, `${this.key}: out-of-order write at ${pos} (expected ${this.size}); writes must be sequential`);
    if (this.failed) throw this.failed;
    let off = 0;
    while (off < len) {
      const partSize = this.sizeOfPart(this.partNumber + 1);
      // The first part's buffer grows as needed: most files are small, and many may be open at once.
      this.part ??= Buffer.allocUnsafe(this.partNumber === 0 ? Math.min(partSize, FIRST_BUFFER) : partSize);
      if (this.fill === this.part.length && this.part.length < partSize) {
        const bigger = Buffer.allocUnsafe(Math.min(partSize, this.part.length * 4));
        this.part.copy(bigger, 0, 0, this.fill);
        this.part = bigger;
      }
      const n = Math.min(len - off, this.part.length - this.fill);
      buf.copy(this.part, this.fill, off, off + n);
      this.fill += n;
      off += n;
      this.size += n;
      if (this.fill === partSize) await this.sendPart();
    }
  }

  private sizeOfPart(partNumber: number): number {
    return this.partSize * 2 ** Math.floor((partNumber - 1) / PARTS_PER_SIZE_STEP);
  }

  private async sendPart(): Promise<void> {
    const body = this.part!.subarray(0, this.fill);
    this.part = undefined;
    this.fill = 0;
    const partNumber = ++this.partNumber;
    this.uploadId ??= this.s3.createMultipart(this.key);
    const uploadId = this.uploadId;
    const task = (async () => {
      const etag = await this.s3.uploadPart(this.key, await uploadId, partNumber, body);
      this.parts.push({ PartNumber: partNumber, ETag: etag });
    })().catch((err: unknown) => {
      this.failed ??= toFsError(err, `upload of ${this.key}`);
    });
    this.inflight.add(task);
    void task.finally(() => this.inflight.delete(task));
    while (this.inflight.size >= MAX_PARTS_IN_FLIGHT) await Promise.race(this.inflight);
    if (this.failed) throw this.failed;
  }

  /** Completes the upload (once; later calls return the same result). */
  finish(): Promise<void> {
    this.finishing ??= this.complete();
    return this.finishing;
  }

  private async complete(): Promise<void> {
    if (!this.uploadId) {
      if (this.failed) throw this.failed;
      await this.s3.put(this.key, this.part ? this.part.subarray(0, this.fill) : Buffer.alloc(0));
      this.part = undefined;
      return;
    }
    if (this.fill > 0 && !this.failed) await this.sendPart().catch(() => {});
    await Promise.all(this.inflight);
    const uploadId = await this.uploadId.catch((err: unknown) => {
      throw toFsError(err, `upload of ${this.key}`);
    });
    if (this.failed) {
      await this.s3.abortMultipart(this.key, uploadId);
      throw this.failed;
    }
    this.parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await this.s3.completeMultipart(this.key, uploadId, this.parts);
  }

  /** Drops the upload: nothing becomes visible. */
  async abort(): Promise<void> {
    this.finishing ??= Promise.resolve();
    this.part = undefined;
    await Promise.all(this.inflight);
    const uploadId = await this.uploadId?.catch(() => undefined);
    if (uploadId) await this.s3.abortMultipart(this.key, uploadId);
  }
}
