import { execFile } from "node:child_process";
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, type S3Client, type _Object } from "@aws-sdk/client-s3";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeS3Client } from "../../lib/s3-client.js";
import { REPO } from "./repo.js";

const run = promisify(execFile);

/** The project's own S3 server (scripts/s3-server.sh: Swift + s3api on loopback). */
export const S3_ENDPOINT = `http://127.0.0.1:${process.env.SILO_S3_PORT ?? 18080}`;
export const S3_CREDENTIALS = { accessKeyId: "test:tester", secretAccessKey: "testing" };

/** AWS_* variables that point a mount (or any AWS tool) at the test server. */
export const s3Env = (): NodeJS.ProcessEnv => ({
  AWS_ENDPOINT_URL: S3_ENDPOINT,
  AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
  AWS_REGION: "us-east-1",
});

/** Starts the S3 server unless it is up (installs Swift from Debian on a fresh machine); idempotent and quick when running. */
export async function startS3(): Promise<S3Client> {
  await run("bash", [join(REPO, "scripts/s3-server.sh"), "start"], { timeout: 600_000 });
  return makeS3Client({ endpoint: S3_ENDPOINT, region: "us-east-1", credentials: S3_CREDENTIALS });
}

/** A fresh bucket with a unique name. */
export async function freshBucket(s3: S3Client, stem: string): Promise<string> {
  const name = `${stem}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** Every object of a bucket under a prefix (all pages). */
export async function listObjects(s3: S3Client, bucket: string, prefix = ""): Promise<_Object[]> {
  const out: _Object[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    out.push(...(page.Contents ?? []));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Deletes every object of a bucket, or of a prefix in it (keeps the bucket: Swift's account listing is cheap). */
export async function emptyBucket(s3: S3Client, bucket: string, prefix = ""): Promise<void> {
  const keys = (await listObjects(s3, bucket, prefix)).map((o) => ({ Key: o.Key! }));
  for (let i = 0; i < keys.length; i += 1000) {
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000), Quiet: true } }));
  }
}
