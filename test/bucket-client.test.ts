import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloudBucketMount, InvalidError } from "../client/index.js";
import { parseMountSpec } from "../cli/mount-spec.js";
import { mountCloudBucket } from "../fuse/bucket/mount.js";
import { mountPointState } from "../fuse/common/mount-table.js";
import { cliMount, forceUnmount, newMountPoint, waitForExit } from "./helpers/bucket-mount.js";
import { S3_CREDENTIALS, S3_ENDPOINT, emptyBucket, freshBucket, s3Env, startS3 } from "./helpers/s3.js";
import { SiloServer } from "./helpers/silo-server.js";

describe("silo.cloudBucketMounts.create validation (like the reference)", () => {
  const silo = { cloudBucketMounts: { create: (b: string, p = {}) => new CloudBucketMount(b, p) } };
  it("keyPrefix must end in '/'", () => {
    expect(() => silo.cloudBucketMounts.create("bucket", { keyPrefix: "path/to/dir" })).toThrow(InvalidError);
    expect(() => silo.cloudBucketMounts.create("bucket", { keyPrefix: "/abs/" })).toThrow(InvalidError);
    expect(silo.cloudBucketMounts.create("bucket", { keyPrefix: "path/to/dir/" }).keyPrefix).toBe("path/to/dir/");
  });
  it("requesterPays needs credentials; bad names and endpoints are refused", () => {
    expect(() => silo.cloudBucketMounts.create("bucket", { requesterPays: true })).toThrow(/Requester Pays/);
    expect(() => silo.cloudBucketMounts.create("b")).toThrow(InvalidError);
    expect(() => silo.cloudBucketMounts.create("bucket", { bucketEndpointUrl: "not a url" })).toThrow(InvalidError);
    expect(() => silo.cloudBucketMounts.create("bucket", { bucketEndpointUrl: "ftp://x" })).toThrow(InvalidError);
    const m = silo.cloudBucketMounts.create("my-bucket", { bucketEndpointUrl: "https://acct.r2.cloudflarestorage.com", readOnly: true });
    expect(m).toMatchObject({ bucketName: "my-bucket", readOnly: true, requesterPays: false });
  });
});

describe("silo run -b specs", () => {
  it("parses BUCKET[/prefix/]:/path[:ro]", () => {
    expect(parseMountSpec("bucket", "data:/mnt/data")).toEqual({ kind: "bucket", name: "data", keyPrefix: undefined, path: "/mnt/data", readOnly: false });
    expect(parseMountSpec("bucket", "data/sets/2024/:/in:ro")).toEqual({ kind: "bucket", name: "data", keyPrefix: "sets/2024/", path: "/in", readOnly: true });
    expect(() => parseMountSpec("bucket", "data")).toThrow(/BUCKET/);
    expect(() => parseMountSpec("bucket", "data:relative")).toThrow(/BUCKET/);
  });
});

describe("mounting with credentials from a silo secret", () => {
  let server: SiloServer;
  let s3: S3Client;
  let bucket: string;
  beforeAll(async () => {
    [server, s3] = await Promise.all([SiloServer.start(), startS3()]);
    bucket = await freshBucket(s3, "secret");
  });
  afterAll(async () => {
    if (bucket) await emptyBucket(s3, bucket);
    s3?.destroy();
    await server?.cleanup();
  });

  it("mountCloudBucket (what `silo run -b` calls) mounts with a secret and unmount() stops it", async () => {
    await using silo = server.client();
    const secret = await silo.secrets.create("s3-creds", { AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey, AWS_REGION: "us-east-1" });
    const mount = silo.cloudBucketMounts.create(bucket, { bucketEndpointUrl: S3_ENDPOINT, secret, keyPrefix: "jobs/" });
    const dir = newMountPoint();
    try {
      // No AWS_* in the environment: only the secret can make this work.
      const handle = await mountCloudBucket(mount, dir, { env: {} });
      await writeFile(join(dir, "out.txt"), "from a job");
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "jobs/out.txt" }));
      expect(await res.Body!.transformToString()).toBe("from a job");
      await handle.unmount();
      expect(await waitForExit(handle.pid)).toBe(true);

      const ro = await mountCloudBucket(mount, dir, { env: {}, readOnly: true });
      expect(await readFile(join(dir, "out.txt"), "utf8")).toBe("from a job");
      await expect(writeFile(join(dir, "x.txt"), "x")).rejects.toMatchObject({ code: "EROFS" });
      await ro.unmount();
    } finally {
      await forceUnmount(dir);
    }
  });

  it("silo run -b mounts a bucket prefix for the command, lists it in SILO_MOUNTS, and unmounts after", async () => {
    const script =
      'cat /mnt/in/out.txt; echo; echo "$SILO_MOUNTS"; echo result > /mnt/in/result.txt; ' +
      "touch /mnt/ro/nope 2>/dev/null && echo wrote-ro || echo ro-refused";
    const res = await server.cli(["run", "-b", `${bucket}/jobs/:/mnt/in`, "-b", `${bucket}:/mnt/ro:ro`, "--", "sh", "-c", script], {
      env: s3Env(),
    });
    expect(res.code, res.stderr).toBe(0);
    const [content, mounts, roResult] = res.stdout.trim().split("\n");
    expect(content).toBe("from a job");
    expect(JSON.parse(mounts!)).toMatchObject({
      "/mnt/in": { kind: "bucket", name: bucket, readOnly: false },
      "/mnt/ro": { kind: "bucket", name: bucket, readOnly: true },
    });
    expect(roResult).toBe("ro-refused");
    const put = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "jobs/result.txt" }));
    expect(await put.Body!.transformToString()).toBe("result\n");
  });

  it("with exitWithParent (silo run), the daemon unmounts and exits when the process that mounted dies", async () => {
    const dir = newMountPoint();
    const dist = (p: string) => JSON.stringify(join(import.meta.dirname, "../dist", p));
    const script =
      `import { mountCloudBucket } from ${dist("fuse/bucket/mount.js")}; import { CloudBucketMount } from ${dist("client/index.js")};` +
      `const h = await mountCloudBucket(new CloudBucketMount(${JSON.stringify(bucket)}, { bucketEndpointUrl: ${JSON.stringify(S3_ENDPOINT)} }), ${JSON.stringify(dir)}, { exitWithParent: true });` +
      "console.log(h.pid); setInterval(() => {}, 1000);";
    const parent = spawn(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, ...s3Env() }, stdio: ["ignore", "pipe", "inherit"] });
    try {
      const [line] = (await once(parent.stdout, "data")) as [Buffer];
      const pid = Number(line.toString().trim());
      expect(await mountPointState(dir)).toBe("live");
      parent.kill("SIGKILL");
      expect(await waitForExit(pid)).toBe(true);
      expect(await mountPointState(dir)).toBe("free");
    } finally {
      parent.kill("SIGKILL");
      await forceUnmount(dir);
    }
  });

  it("a secret without the AWS keys is refused before mounting; `silo bucket mount --secret` works", async () => {
    await using silo = server.client();
    const bad = await silo.secrets.create("not-aws", { SOMETHING: "else" });
    const dir = newMountPoint();
    try {
      await expect(mountCloudBucket(silo.cloudBucketMounts.create(bucket, { bucketEndpointUrl: S3_ENDPOINT, secret: bad }), dir)).rejects.toThrow(/AWS_ACCESS_KEY_ID/);
      await cliMount(bucket, dir, ["--secret", "s3-creds", "--endpoint", S3_ENDPOINT], { ...server.env, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" });
      expect(await readFile(join(dir, "jobs/out.txt"), "utf8")).toBe("from a job");
    } finally {
      await forceUnmount(dir);
    }
  });
});
