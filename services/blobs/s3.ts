import { Readable } from "node:stream";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { SignatureV4 } from "@smithy/signature-v4";
import { makeS3Client } from "../../lib/s3-client.js";
import { siloError, notFound } from "../errors.js";
import type { BlobInfo, BlobStore, ByteRange, DirectBlobAccess, SignedRequest } from "./blob-store.js";

/** Where `--blobs s3://bucket/prefix` points, and how to reach it. */
export interface S3BlobSettings {
  bucket: string;
  /** Key prefix without leading or trailing `/` ("" for the bucket root). */
  prefix: string;
  endpoint?: string;
  region: string;
}

/** Presigned URLs and signed uploads are usable this long; clients use them at once. */
const SIGNED_FOR_S = 15 * 60;
/** S3's DeleteObjects limit. */
const DELETE_BATCH = 1000;

/** Parses `s3://bucket[/prefix]`. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw siloError("INVALID", `--blobs must be 'local' or 's3://bucket[/prefix]', got '${url}'`);
  return { bucket: m[1]!, prefix: m[2]!.replace(/^\/+|\/+$/g, "") };
}

/**
 * Blobs as objects `<prefix>/<namespace>/<aa>/<hash>` in an S3-compatible bucket (AWS S3, R2,
 * GCS interop, MinIO, Swift s3api). Besides the BlobStore calls it hands out presigned GETs and
 * signed PUTs, so clients move block bytes to and from the bucket without the server. A signed
 * PUT carries the block's SHA-256 as `x-amz-content-sha256`, the SigV4 payload hash: the store
 * itself refuses a body that does not match, which is how the block's hash is verified without
 * the bytes passing through silo.
 */
export class S3BlobStore implements BlobStore, DirectBlobAccess {
  readonly direct: DirectBlobAccess = this;
  private readonly signer: SignatureV4;

  constructor(
    private readonly s3: S3Client,
    private readonly settings: S3BlobSettings,
  ) {
    this.signer = new SignatureV4({
      credentials: s3.config.credentials,
      region: settings.region,
      service: "s3",
      sha256: s3.config.sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  /** A store for these settings; credentials come from the standard AWS environment variables. */
  static async open(settings: S3BlobSettings): Promise<S3BlobStore> {
    const store = new S3BlobStore(makeS3Client({ endpoint: settings.endpoint, region: settings.region }), settings);
    await store.s3.send(new HeadBucketCommand({ Bucket: settings.bucket })).catch((err: Error) => {
      throw siloError("INVALID", `S3 bucket '${settings.bucket}' is not reachable${settings.endpoint ? ` at ${settings.endpoint}` : ""}: ${err.name} ${err.message}`);
    });
    return store;
  }

  private nsPrefix(ns: string): string {
    return this.settings.prefix ? `${this.settings.prefix}/${ns}/` : `${ns}/`;
  }

  private key(ns: string, hash: string): string {
    return `${this.nsPrefix(ns)}${hash.slice(0, 2)}/${hash}`;
  }

  async has(ns: string, hash: string): Promise<boolean> {
    return (await this.size(ns, hash)) !== undefined;
  }

  async size(ns: string, hash: string): Promise<number | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.key(ns, hash) }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(ns: string, hash: string, body: AsyncIterable<Uint8Array>): Promise<number> {
    // Blocks are at most 8 MiB: buffer the (verifying) stream, so a wrong hash stores nothing
    // and the store gets a known length (no aws-chunked bodies, which Swift and GCS refuse).
    const chunks: Uint8Array[] = [];
    for await (const c of body) chunks.push(c);
    const data = Buffer.concat(chunks);
    await this.s3.send(new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.key(ns, hash), Body: data, ContentLength: data.length }));
    return data.length;
  }

  async get(ns: string, hash: string, range?: ByteRange): Promise<Readable> {
    if (range && range.end <= range.start) return Readable.from([], { objectMode: false });
    try {
      const res = await this.s3.send(
        new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(ns, hash), Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined }),
      );
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw notFound(`Block ${hash}`);
      throw err;
    }
  }

  async delete(ns: string, hash: string): Promise<void> {
    await this.deleteMany(ns, [hash]);
  }

  async deleteMany(ns: string, hashes: readonly string[]): Promise<void> {
    for (let i = 0; i < hashes.length; i += DELETE_BATCH) {
      const res = await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.settings.bucket,
          Delete: { Objects: hashes.slice(i, i + DELETE_BATCH).map((h) => ({ Key: this.key(ns, h) })), Quiet: true },
        }),
      );
      const failed = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
      if (failed.length > 0) throw new Error(`S3 DeleteObjects failed for ${failed.length} keys, e.g. ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message}`);
    }
  }

  async *list(ns: string): AsyncIterable<BlobInfo> {
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.nsPrefix(ns), ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const hash = o.Key!.slice(o.Key!.lastIndexOf("/") + 1);
        yield { hash, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async signGet(ns: string, hash: string): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(ns, hash) }), { expiresIn: SIGNED_FOR_S });
  }

  async signPut(ns: string, hash: string): Promise<SignedRequest> {
    // The presigner resolves the object's URL (path- or virtual-hosted style); the request
    // itself is signed with headers so that the payload hash is part of the signature.
    const presigned = new URL(await getSignedUrl(this.s3, new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.key(ns, hash) })));
    const signed = await this.signer.sign({
      method: "PUT",
      protocol: presigned.protocol,
      hostname: presigned.hostname,
      port: presigned.port ? Number(presigned.port) : undefined,
      path: presigned.pathname,
      query: {},
      headers: { host: presigned.host, "x-amz-content-sha256": hash },
    });
    const headers = Object.fromEntries(Object.entries(signed.headers).filter(([k]) => k.toLowerCase() !== "host"));
    return { method: "PUT", url: `${presigned.origin}${presigned.pathname}`, headers };
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404;
}
