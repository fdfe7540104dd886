import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { S3_ENDPOINT, emptyBucket, listObjects, s3Env, startS3 } from "./s3.js";

/** Where a test server keeps volume blocks: `local` files, or a bucket on the test S3 server. */
export type BlobBackend = "local" | "s3";

/** The backend test servers use unless a test picks one: SILO_TEST_BLOBS (the vitest project "s3" sets it). */
export const TEST_BLOB_BACKEND: BlobBackend = process.env.SILO_TEST_BLOBS === "s3" ? "s3" : "local";

/** The bucket every S3-backed test server shares, each in its own key prefix. */
export const TEST_BUCKET = "silo-test-blobs";

export interface TestBlobs {
  backend: BlobBackend;
  /** Extra `silo serve` flags and environment. */
  args: string[];
  env: NodeJS.ProcessEnv;
  /** For `s3`: the bucket, the server's key prefix, and a second client that looks into the bucket. */
  s3?: { client: S3Client; bucket: string; prefix: string };
  /** The stored blobs: hash → an identity that changes if the blob is written again (after `identityResolutionMs`). */
  stored(home: string): Promise<Map<string, string>>;
  /** How long after a write a rewrite is sure to change the identity (S3 stamps whole seconds). */
  identityResolutionMs: number;
  cleanup(): Promise<void>;
}

/** Sets up the blob backend for a new test server (for `s3`: starts the S3 server if needed). */
export async function testBlobs(args: string[], backend: BlobBackend = TEST_BLOB_BACKEND): Promise<TestBlobs> {
  if (backend === "local" || args.includes("--blobs")) return localBlobs();
  const client = await startS3();
  await client.send(new CreateBucketCommand({ Bucket: TEST_BUCKET })).catch((err: Error) => {
    if (err.name !== "BucketAlreadyOwnedByYou" && err.name !== "BucketAlreadyExists") throw err;
  });
  const prefix = `t-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const s3 = { client, bucket: TEST_BUCKET, prefix };
  return {
    backend,
    args: ["--blobs", `s3://${TEST_BUCKET}/${prefix}`, "--s3-endpoint", S3_ENDPOINT],
    env: s3Env(),
    s3,
    identityResolutionMs: 1000,
    async stored() {
      const out = new Map<string, string>();
      for (const o of await listObjects(client, TEST_BUCKET, `${prefix}/`)) out.set(o.Key!.slice(o.Key!.lastIndexOf("/") + 1), o.LastModified!.toISOString());
      return out;
    },
    async cleanup() {
      await emptyBucket(client, TEST_BUCKET, `${prefix}/`);
      client.destroy();
    },
  };
}

/** Blob files under the server's home (the default backend). */
export function localBlobs(): TestBlobs {
  return {
    backend: "local",
    args: [],
    env: {},
    identityResolutionMs: 0,
    async stored(home) {
      // Blob files by inode: a rewrite writes a new file and renames it in. GC may delete a
      // file or its directory while this walks: what is gone by then is not stored.
      const root = join(home, "data/blobs");
      const out = new Map<string, string>();
      for (const ws of readdirSync(root)) {
        for (const prefix of unlessGone(() => readdirSync(join(root, ws)), [])) {
          for (const name of unlessGone(() => readdirSync(join(root, ws, prefix)), [])) {
            const ino = unlessGone(() => String(statSync(join(root, ws, prefix, name)).ino), undefined);
            if (ino !== undefined) out.set(name, ino);
          }
        }
      }
      return out;
    },
    async cleanup() {},
  };
}

function unlessGone<T, F>(read: () => T, gone: F): T | F {
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return gone;
    throw err;
  }
}
