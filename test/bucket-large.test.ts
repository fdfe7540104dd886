import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliMount, forceUnmount, newMountPoint } from "./helpers/bucket-mount.js";
import { emptyBucket, freshBucket, startS3 } from "./helpers/s3.js";

const sh = promisify(execFile);
const GiB = 1024 ** 3;

let s3: S3Client;
let bucket: string;
let mnt: string;

beforeAll(async () => {
  s3 = await startS3();
  bucket = await freshBucket(s3, "large");
  mnt = newMountPoint();
  await cliMount(bucket, mnt);
});
afterAll(async () => {
  if (mnt) await forceUnmount(mnt);
  if (bucket) await emptyBucket(s3, bucket);
  s3?.destroy();
});

/** `total` pseudo-random bytes (cheap to make: a 1 MiB block with a changing header). */
function* generated(total: number): Generator<Buffer> {
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let off = 0, n = 0; off < total; off += block.length, n++) {
    block.writeUInt32LE(n, 0);
    yield Buffer.from(block.subarray(0, Math.min(block.length, total - off)));
  }
}

describe("large files and large directories", () => {
  it("writes 1 GiB through the mount (multipart while writing) and reads it back with the same SHA-256", { timeout: 240_000 }, async () => {
    const path = join(mnt, "one-gib.bin");
    const wrote = createHash("sha256");
    await pipeline(
      Readable.from(generated(GiB)),
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          wrote.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(path, { highWaterMark: 1024 * 1024 }),
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "one-gib.bin" }));
    expect(head.ContentLength).toBe(GiB);
    const read = createHash("sha256");
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), read);
    expect(read.digest("hex")).toBe(wrote.digest("hex"));
  });

  it("lists a directory of more than 1,000 keys (paginated listing), also with ls from another process", { timeout: 120_000 }, async () => {
    const n = 1234;
    const names = Array.from({ length: n }, (_, i) => `f${String(i).padStart(5, "0")}.txt`);
    for (let i = 0; i < n; i += 64) {
      await Promise.all(names.slice(i, i + 64).map((name) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `many/${name}`, Body: name }))));
    }
    expect((await readdir(join(mnt, "many"))).sort()).toEqual(names);
    const { stdout } = await sh("ls", ["-1", join(mnt, "many")], { maxBuffer: 1 << 20 });
    expect(stdout.trim().split("\n")).toHaveLength(n);
  });
});
