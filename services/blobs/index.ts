import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { LocalBlobStore } from "./local.js";
import { S3BlobStore, parseS3Url } from "./s3.js";

export type { BlobInfo, BlobStore, ByteRange, DirectBlobAccess, SignedRequest } from "./blob-store.js";
export { HASH_RE } from "./blob-store.js";
export { verifyingStream } from "./verify.js";

/** Where blobs live: `local` (files under `<dataDir>/blobs`) or an S3-compatible bucket. */
export interface BlobSettings {
  /** `local` or `s3://bucket[/prefix]`. */
  blobs: string;
  s3Endpoint?: string;
  s3Region?: string;
}

/** The blob store the server uses. */
export async function openBlobStore(settings: BlobSettings, dataDir: string): Promise<BlobStore> {
  if (settings.blobs === "local") return new LocalBlobStore(join(dataDir, "blobs"));
  const { bucket, prefix } = parseS3Url(settings.blobs);
  return S3BlobStore.open({
    bucket,
    prefix,
    endpoint: settings.s3Endpoint || process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined,
    region: settings.s3Region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1",
  });
}
