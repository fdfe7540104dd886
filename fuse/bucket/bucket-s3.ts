import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { FsError, NegativeErrno } from "../common/errno.js";

export interface ObjectInfo {
  size: number;
  mtimeMs: number;
}

/** One page of a delimited listing: immediate "sub-directories" and objects under a prefix. */
export interface ListPage {
  prefixes: string[];
  objects: Array<{ key: string; size: number; mtimeMs: number }>;
}

/** The S3 calls a bucket mount makes, in one place: requester-pays, error mapping, ranged reads into buffers. */
export class BucketS3 {
  private readonly payer: { RequestPayer?: "requester" };

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    requesterPays: boolean,
  ) {
    this.payer = requesterPays ? { RequestPayer: "requester" } : {};
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ...this.payer }));
      return { size: res.ContentLength ?? 0, mtimeMs: res.LastModified?.getTime() ?? Date.now() };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw toFsError(err, `HEAD ${key}`);
    }
  }

  /** Whether any key starts with `prefix` (i.e. the "directory" exists). */
  async hasKeysUnder(prefix: string): Promise<boolean> {
    const page = await this.listPage(prefix, undefined, 1);
    return page.page.prefixes.length > 0 || page.page.objects.length > 0;
  }

  private async listPage(prefix: string, token: string | undefined, maxKeys?: number): Promise<{ page: ListPage; next?: string }> {
    try {
      const res = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: "/", ContinuationToken: token, MaxKeys: maxKeys, ...this.payer }),
      );
      return {
        page: {
          prefixes: (res.CommonPrefixes ?? []).map((p) => p.Prefix!).filter(Boolean),
          objects: (res.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 })),
        },
        next: res.IsTruncated ? res.NextContinuationToken : undefined,
      };
    } catch (err) {
      throw toFsError(err, `LIST ${prefix}`);
    }
  }

  /** Every page of a delimited listing, one request at a time (S3 pagination is sequential). */
  async *list(prefix: string): AsyncGenerator<ListPage> {
    let token: string | undefined;
    do {
      const { page, next } = await this.listPage(prefix, token);
      yield page;
      token = next;
    } while (token);
  }

  /** Bytes [start, end) of an object, read straight into `into` (at least end - start long) or a new buffer. */
  async getRange(key: string, start: number, end: number, into?: Buffer): Promise<Buffer> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}`, ...this.payer }));
      const out = into ? into.subarray(0, end - start) : Buffer.allocUnsafe(end - start);
      let off = 0;
      for await (const chunk of res.Body as Readable) {
        const c = chunk as Buffer;
        const n = Math.min(c.length, out.length - off);
        c.copy(out, off, 0, n);
        off += n;
      }
      return off === out.length ? out : out.subarray(0, off);
    } catch (err) {
      throw toFsError(err, `GET ${key} ${start}-${end}`);
    }
  }

  async put(key: string, body: Buffer): Promise<void> {
    try {
      await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ...this.payer }));
    } catch (err) {
      throw toFsError(err, `PUT ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, ...this.payer }));
    } catch (err) {
      throw toFsError(err, `DELETE ${key}`);
    }
  }

  async createMultipart(key: string): Promise<string> {
    try {
      const res = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ...this.payer }));
      return res.UploadId!;
    } catch (err) {
      throw toFsError(err, `CreateMultipartUpload ${key}`);
    }
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    try {
      const res = await this.s3.send(
        new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length, ...this.payer }),
      );
      return res.ETag!;
    } catch (err) {
      throw toFsError(err, `UploadPart ${key} #${partNumber}`);
    }
  }

  async completeMultipart(key: string, uploadId: string, parts: Array<{ PartNumber: number; ETag: string }>): Promise<void> {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...this.payer }),
      );
    } catch (err) {
      throw toFsError(err, `CompleteMultipartUpload ${key}`);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, ...this.payer })).catch(() => {
      // Best effort: a leftover upload is cleaned by the bucket's lifecycle rules, never visible as an object.
    });
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as Error).name;
  return name === "NotFound" || name === "NoSuchKey" || statusOf(err) === 404;
}

/** S3 failures as the errno a file system call should report (details go to the daemon log). */
export function toFsError(err: unknown, what: string): FsError {
  if (err instanceof FsError) return err;
  const status = statusOf(err);
  const name = (err as Error).name;
  const message = `${what}: ${name}: ${(err as Error).message}`;
  if (isNotFound(err)) return new FsError(NegativeErrno.ENOENT, message);
  if (status === 403 || status === 401 || name === "AccessDenied") return new FsError(NegativeErrno.EACCES, message);
  if (name === "TimeoutError" || name === "RequestTimeout") return new FsError(NegativeErrno.ETIMEDOUT, message);
  return new FsError(NegativeErrno.EIO, message);
}
