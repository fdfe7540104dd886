/**
 * Part (c) of `npm run bench:volume`: the S3 blob backend on the project's Swift server.
 * 256 MiB of 8 MiB blocks written and read back with the block-level API a mount uses (direct:
 * signed requests, bytes straight to the bucket), the same blocks through the server (PUT
 * /blocks, ranged GET /file without the direct header), and the AWS SDK talking to the bucket
 * itself (the limit).
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { BLOCK_SIZE } from "../../client/index.js";
import { makeS3Client } from "../../lib/s3-client.js";
import { BenchSilo } from "./silo-server.js";

const REPO = resolve(import.meta.dirname, "../../..");
const ENDPOINT = `http://127.0.0.1:${process.env.SILO_S3_PORT ?? 18080}`;
const CREDS = { accessKeyId: "test:tester", secretAccessKey: "testing" };
const BUCKET = "silo-bench-blobs";
const BLOCKS = 32;
const CONCURRENCY = 4;
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function eachLimit<T>(items: T[], fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

export async function s3Backend(): Promise<void> {
  await promisify(execFile)("bash", [join(REPO, "scripts/s3-server.sh"), "start"], { timeout: 600_000 });
  const s3 = makeS3Client({ endpoint: ENDPOINT, region: "us-east-1", credentials: CREDS });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => {});
  const prefix = `bench-${Date.now().toString(36)}`;
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, AWS_REGION: "us-east-1" });
  const server = await BenchSilo.start(["--blobs", `s3://${BUCKET}/${prefix}`, "--s3-endpoint", ENDPOINT]);
  const client = server.client();
  try {
    const blocks = Array.from({ length: BLOCKS }, () => randomBytes(BLOCK_SIZE));
    const hashes = blocks.map((b) => createHash("sha256").update(b).digest("hex"));
    const MiB = (BLOCKS * BLOCK_SIZE) / 2 ** 20;
    const direct = await client.volumes.fromName("bench-direct", { createIfMissing: true });
    const proxied = await client.volumes.fromName("bench-proxied", { createIfMissing: true });
    const file = { path: "f", type: "file" as const, mode: 0o644, size: BLOCKS * BLOCK_SIZE, mtimeMs: 0, blocks: hashes };

    const cases = {
      // The block-level API a mount uses: signed PUTs / presigned GETs, bytes straight to the bucket.
      direct: {
        write: () => eachLimit(blocks, (b, i) => direct.blocks.uploadBlock(hashes[i]!, b)),
        read: () =>
          eachLimit(hashes, async (h, i) => {
            if (!(await direct.blocks.readBlock(h)).equals(blocks[i]!)) throw new Error("block read back differs");
          }),
      },
      // The server carries the bytes: raw block PUTs (it verifies and writes the bucket), ranged file reads it streams from the bucket.
      server: {
        write: () =>
          eachLimit(blocks, async (b, i) => {
            const res = await fetch(`${server.url}/v1/volumes/${proxied.id}/blocks/${hashes[i]}`, {
              method: "PUT",
              headers: { authorization: server.authorization(), "content-type": "application/octet-stream" },
              body: b,
            });
            if (!res.ok) throw new Error(`PUT through the server: ${res.status}`);
          }),
        read: () =>
          eachLimit(blocks, async (b, i) => {
            // Without `x-silo-direct: 1` (as curl would ask), the server streams the range itself.
            const res = await fetch(`${server.url}/v1/volumes/${proxied.id}/file?path=f`, {
              headers: { authorization: server.authorization(), range: `bytes=${i * BLOCK_SIZE}-${(i + 1) * BLOCK_SIZE - 1}` },
            });
            if ((await res.arrayBuffer()).byteLength !== b.length) throw new Error("short read through the server");
          }),
      },
      // The AWS SDK straight to the bucket: the limit.
      sdk: {
        write: () => eachLimit(blocks, (b, i) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/sdk/${i}`, Body: b })).then(() => {})),
        read: () =>
          eachLimit(blocks, async (_, i) => {
            const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}/sdk/${i}` }));
            await res.Body!.transformToByteArray();
          }),
      },
    };
    // Rounds take turns between the three, so load from elsewhere on the machine hits all alike.
    const times = { direct: { write: [] as number[], read: [] as number[] }, server: { write: [] as number[], read: [] as number[] }, sdk: { write: [] as number[], read: [] as number[] } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of ["direct", "server", "sdk"] as const) {
        times[name].write.push(await timed(cases[name].write));
        if (round === 0 && name !== "sdk") await (name === "direct" ? direct : proxied).blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry: file }] });
        times[name].read.push(await timed(cases[name].read));
      }
    }

    const rate = (s: number) => `${(MiB / s).toFixed(0)} MiB/s`;
    console.log(`\n(c) S3 blob backend on the local Swift server: ${MiB} MiB in 8 MiB blocks, ${CONCURRENCY} in flight, median of ${ROUNDS} rounds (ratio = time / AWS SDK's)`);
    console.log("case            direct (presigned)   through server   AWS SDK alone   direct/SDK   server/SDK");
    for (const op of ["write", "read"] as const) {
      const [d, v, k] = [median(times.direct[op]), median(times.server[op]), median(times.sdk[op])];
      console.log(
        `${op.padEnd(15)} ${rate(d).padStart(18)} ${rate(v).padStart(16)} ${rate(k).padStart(15)} ${(d / k).toFixed(2).padStart(11)}x ${(v / k).toFixed(2).padStart(11)}x`,
      );
    }
  } finally {
    await client.close();
    await server.stop();
    s3.destroy();
  }
}
