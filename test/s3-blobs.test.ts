import { createHash } from "node:crypto";
import { createServer, connect, type Server } from "node:net";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, InvalidError, NotFoundError, SiloClient } from "../client/index.js";
import { eventually } from "./helpers/eventually.js";
import { listObjects, s3Env } from "./helpers/s3.js";
import { SiloServer, siloServerFixture } from "./helpers/silo-server.js";
import { bytes, readAll, sha256 } from "./helpers/volume-data.js";

// The S3 blob backend itself, against the project's Swift server, looked at with a second S3 client.
// A grace an upload to the bucket outlasts under load (1 s did not at load 18: the batch's
// blocks were collected before its commit); the GC case waits up to 20 s.
const fx = siloServerFixture(["--volume-retention-ms", "0", "--volume-block-grace-ms", "5000", "--volume-gc-interval-ms", "100"], { blobs: "s3" });

const s3 = () => fx.server.blobs.s3!;
const keysInBucket = async () => (await listObjects(s3().client, s3().bucket, `${s3().prefix}/`)).map((o) => o.Key!);

/** A TCP proxy in front of a silo server that counts the bytes going through it, both ways. */
async function countingProxy(target: string): Promise<{ url: string; bytes: () => number; close: () => Promise<void> }> {
  const { hostname, port } = new URL(target);
  let total = 0;
  const proxy: Server = createServer((inbound) => {
    const outbound = connect(Number(port), hostname);
    inbound.on("data", (d: Buffer) => (total += d.length));
    outbound.on("data", (d: Buffer) => (total += d.length));
    inbound.pipe(outbound).pipe(inbound);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const addr = proxy.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    bytes: () => total,
    close: () => new Promise<void>((r) => proxy.close(() => r())),
  };
}

/** Uploads 3 blocks (24 MiB), reads each back and the file in ranges, through a counting proxy; returns the bytes that went through silo. */
async function bytesThroughSilo(target: SiloServer): Promise<number> {
  const proxy = await countingProxy(target.url);
  try {
    await using silo = target.client({ serverUrl: proxy.url });
    const vol = await silo.volumes.fromName("through", { createIfMissing: true });
    const data = bytes(3 * BLOCK_SIZE);
    await vol.batchUpload().putFile(data, "big.bin").commit();
    const hashes = (await vol.blocks.tree(1)).entries[0]!.blocks as string[];
    for (const [i, h] of hashes.entries()) expect((await vol.blocks.readBlock(h)).equals(data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE))).toBe(true);
    // File-level reads too: a range across a block boundary, and the whole file.
    const range = { start: BLOCK_SIZE - 1000, end: 2 * BLOCK_SIZE + 1000 };
    expect((await readAll(vol, "big.bin", range)).equals(data.subarray(range.start, range.end))).toBe(true);
    expect((await readAll(vol, "big.bin")).equals(data)).toBe(true);
    return proxy.bytes();
  } finally {
    await proxy.close();
  }
}

describe("S3 blob backend", () => {
  it("keeps large blocks as objects <prefix>/<workspace>/<aa>/<hash> in the bucket; small ones inline", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("layout", { createIfMissing: true });
    const large = bytes(BLOCK_SIZE + 100_000);
    const small = bytes(1000);
    await vol.batchUpload().putFile(large, "large").putFile(small, "small").commit();
    const tree = await vol.blocks.tree(1);
    const blocksOf = (p: string) => tree.entries.find((e) => e.path === p)!.blocks as string[];
    const keys = await keysInBucket();
    for (const h of blocksOf("large")) expect(keys).toContainEqual(expect.stringMatching(new RegExp(`^${s3().prefix}/ws-[^/]+/${h.slice(0, 2)}/${h}$`)));
    expect(keys.some((k) => k.endsWith(blocksOf("small")[0]!))).toBe(false);
    // The object is the block, byte for byte (read with the second client).
    const key = keys.find((k) => k.endsWith(blocksOf("large")[1]!))!;
    const obj = await s3().client.send(new GetObjectCommand({ Bucket: s3().bucket, Key: key }));
    expect(Buffer.from(await obj.Body!.transformToByteArray()).equals(large.subarray(BLOCK_SIZE))).toBe(true);
    expect((await readAll(vol, "large")).equals(large)).toBe(true);
  });

  it("block bytes go straight between client and bucket: the server carries only metadata", async () => {
    const viaS3 = await bytesThroughSilo(fx.server);
    expect(viaS3).toBeLessThan(256 * 1024);
    // The same work against a local-backend server moves every byte through it (the proxy counts right).
    const local = await SiloServer.start([], { blobs: "local" });
    try {
      expect(await bytesThroughSilo(local)).toBeGreaterThan(3 * 3 * BLOCK_SIZE);
    } finally {
      await local.cleanup();
    }
  });

  it("a file read from the bucket spanning more blocks than one answer covers continues where it stopped", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("long", { createIfMissing: true });
    // 33 blocks that dedup to one: 264 MiB of file, 8 MiB in the bucket.
    const block = bytes(BLOCK_SIZE);
    const hash = sha256(block);
    await vol.blocks.uploadBlock(hash, block);
    const entry = { path: "long", type: "file" as const, mode: 0o644, size: 33 * BLOCK_SIZE, mtimeMs: 0, blocks: Array(33).fill(hash) };
    await vol.blocks.commitChanges({ baseVersion: 0, changes: [{ op: "put", entry }] });
    const sha = createHash("sha256");
    let n = 0;
    for await (const chunk of vol.readFile("long", { start: 100 })) {
      sha.update(chunk);
      n += chunk.length;
    }
    expect(n).toBe(33 * BLOCK_SIZE - 100);
    expect(sha.digest("hex")).toBe(createHash("sha256").update(Buffer.concat(Array(33).fill(block)).subarray(100)).digest("hex"));
  });

  it("the store checks each direct upload against its SHA-256; a wrong body stores nothing", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("verify", { createIfMissing: true });
    const data = bytes(200_000);
    const hash = sha256(data);
    await expect(vol.blocks.uploadBlock(hash, bytes(200_000))).rejects.toBeInstanceOf(InvalidError);
    expect(await vol.blocks.missingBlocks([hash])).toEqual([hash]);
    expect((await keysInBucket()).some((k) => k.endsWith(hash))).toBe(false);
    // Confirming a block that never reached the bucket is refused too.
    const res = await fetch(`${fx.server.url}/v1/volumes/${vol.id}/blocks/confirm`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.server.profile.tokenId}:${fx.server.profile.tokenSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ hashes: [hash] }),
    });
    expect(res.status).toBe(400);
    expect(await vol.blocks.missingBlocks([hash])).toEqual([hash]);
    await vol.blocks.uploadBlock(hash, data);
    expect((await vol.blocks.readBlock(hash, { start: 5, end: 50 })).equals(data.subarray(5, 50))).toBe(true);
  });

  it("another workspace gets no URL for a block it does not hold", async () => {
    await using admin = fx.server.client();
    const vol = await admin.volumes.fromName("mine", { createIfMissing: true });
    const data = bytes(300_000);
    await vol.blocks.uploadBlock(sha256(data), data);
    const ws = await admin.workspaces.create("s3-tenant");
    await using tenant = new SiloClient({ serverUrl: fx.server.url, tokenId: ws.tokenId, tokenSecret: ws.tokenSecret });
    const theirs = await tenant.volumes.fromName("mine", { createIfMissing: true });
    await expect(theirs.blocks.readBlock(sha256(data))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("GC deletes collected blocks from the bucket", async () => {
    await using silo = fx.server.client();
    const vol = await silo.volumes.fromName("gc", { createIfMissing: true });
    await vol.batchUpload().putFile(bytes(300_000), "a").putFile(bytes(400_000), "b").commit();
    const hashes = (await vol.blocks.tree(1)).entries.map((e) => e.blocks![0] as string);
    expect((await keysInBucket()).filter((k) => hashes.some((h) => k.endsWith(h)))).toHaveLength(2);
    await vol.removeFile("a");
    await vol.removeFile("b");
    await eventually(async () => expect((await keysInBucket()).filter((k) => hashes.some((h) => k.endsWith(h))), "objects GC has not deleted").toEqual([]), 20_000, 200);
    await expect(vol.blocks.readBlock(hashes[0]!)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("silo serve refuses a bucket it can not reach, clearly", async () => {
    // Credentials and endpoint from the standard AWS variables, as an operator would set them.
    Object.assign(process.env, s3Env());
    await expect(SiloServer.start(["--blobs", "s3://no-such-bucket-for-silo/p"], { blobs: "local" })).rejects.toThrow(
      /S3 bucket 'no-such-bucket-for-silo' is not reachable at http:\/\/127\.0\.0\.1:\d+: NotFound/,
    );
  });

  it("a home whose blocks are in a bucket refuses to start with local blobs", async () => {
    const s = await SiloServer.start([], { blobs: "s3" });
    try {
      await s.stop();
      await expect(new SiloServer(s.home).launch()).rejects.toThrow(/keeps its volume blocks in 's3:\/\/silo-test-blobs\/t-[^']+', not 'local'/);
    } finally {
      await s.cleanup();
    }
  });
});
