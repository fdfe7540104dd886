import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { mountedBucketFixture } from "./helpers/bucket-mount.js";

const sh = promisify(execFile);
const GiB = 1024 ** 3;

const fx = mountedBucketFixture("large");

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
    const path = join(fx.mnt, "one-gib.bin");
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
    const head = await fx.s3.send(new HeadObjectCommand({ Bucket: fx.bucket, Key: "one-gib.bin" }));
    expect(head.ContentLength).toBe(GiB);
    const read = createHash("sha256");
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), read);
    expect(read.digest("hex")).toBe(wrote.digest("hex"));
  });

  it("readers at once (sequential in other processes, random here, some closing during read-ahead) each get the right bytes from reused read-ahead buffers", { timeout: 120_000 }, async () => {
    const data = Buffer.concat([...generated(96 * 1024 * 1024 + 777)]);
    await fx.s3.send(new PutObjectCommand({ Bucket: fx.bucket, Key: "shared.bin", Body: data }));
    const path = join(fx.mnt, "shared.bin");
    const sha256sum = () => sh("sha256sum", [path]).then(({ stdout }) => stdout.split(" ")[0]);
    // Readers that close while their read-ahead is still arriving, then full readers right after.
    const sequential = (async () => {
      const sums: string[] = [];
      for (let i = 0; i < 3; i++) {
        await sh("bash", ["-c", `head -c ${(20 + i * 7) * 1024 * 1024} "$1" > /dev/null`, "-", path]);
        sums.push(...(await Promise.all([sha256sum(), sha256sum()])));
      }
      return sums;
    })();
    const fh = await open(path, "r");
    try {
      for (let i = 0; i < 200; i++) {
        const pos = Math.floor(Math.random() * data.length);
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        expect(bytesRead).toBe(Math.min(buf.length, data.length - pos));
        expect(buf.subarray(0, bytesRead).equals(data.subarray(pos, pos + bytesRead))).toBe(true);
      }
    } finally {
      await fh.close();
    }
    const want = createHash("sha256").update(data).digest("hex");
    expect(await sequential).toEqual(Array(6).fill(want));
  });

  it("lists a directory of more than 1,000 keys (paginated listing), also with ls from another process", { timeout: 120_000 }, async () => {
    const n = 1234;
    const names = Array.from({ length: n }, (_, i) => `f${String(i).padStart(5, "0")}.txt`);
    for (let i = 0; i < n; i += 64) {
      await Promise.all(names.slice(i, i + 64).map((name) => fx.s3.send(new PutObjectCommand({ Bucket: fx.bucket, Key: `many/${name}`, Body: name }))));
    }
    expect((await readdir(join(fx.mnt, "many"))).sort()).toEqual(names);
    const { stdout } = await sh("ls", ["-1", join(fx.mnt, "many")], { maxBuffer: 1 << 20 });
    expect(stdout.trim().split("\n")).toHaveLength(n);
  });
});
