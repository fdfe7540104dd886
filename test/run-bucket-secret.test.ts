import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { parseMountSpec } from "../cli/mount-spec.js";
import { S3_CREDENTIALS, S3_ENDPOINT, emptyBucket, freshBucket, startS3 } from "./helpers/s3.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { within } from "./helpers/volume-mounts.js";

const fx = siloServerFixture();
let s3: S3Client;
let bucket: string;

// The job's environment names the endpoint but holds no credentials: they can only come from the secret.
const noCredentials = (): NodeJS.ProcessEnv => ({
  AWS_ENDPOINT_URL: S3_ENDPOINT,
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
});
const run = (args: string[]) => within(90_000, `silo run ${args.join(" ")}`, fx.server.cli(["run", ...args], { env: noCredentials() }));

beforeAll(async () => {
  s3 = await startS3();
  bucket = await freshBucket(s3, "run-secret");
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "in/hello.txt", Body: "hello from the bucket\n" }));
  await fx.silo.secrets.create("s3-creds", { AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey });
  await fx.silo.secrets.create("wrong-creds", { AWS_ACCESS_KEY_ID: "test:tester", AWS_SECRET_ACCESS_KEY: "not-the-secret" });
  return () => emptyBucket(s3, bucket);
});

describe("silo run -b with credentials from a secret", () => {
  it("--secret NAME gives every bucket mount its credentials", async () => {
    const r = await run(["-b", `${bucket}:/mnt/b`, "--secret", "s3-creds", "--", "sh", "-c", "cat /mnt/b/in/hello.txt && echo out > /mnt/b/out.txt"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("hello from the bucket\n");
    const { GetObjectCommand } = await import("@aws-sdk/client-s3");
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "out.txt" }));
    expect(await res.Body!.transformToString()).toBe("out\n");
  });

  it("a per-mount :secret=NAME wins over --secret", async () => {
    const r = await run(["-b", `${bucket}/in/:/mnt/in:ro:secret=s3-creds`, "--secret", "wrong-creds", "--", "cat", "/mnt/in/hello.txt"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("hello from the bucket\n");
  });

  it("wrong credentials or a missing secret fail the mount, not silently", async () => {
    const wrong = await run(["-b", `${bucket}:/mnt/b`, "--secret", "wrong-creds", "--", "true"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/Could not mount bucket/);
    const missing = await run(["-b", `${bucket}:/mnt/b`, "--secret", "no-such-secret", "--", "true"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/Secret 'no-such-secret' not found/);
  });

  it("parses the spec's suffixes", () => {
    expect(parseMountSpec("bucket", "b/p/:/x:ro:secret=c")).toEqual({ kind: "bucket", name: "b", keyPrefix: "p/", path: "/x", readOnly: true, secret: "c" });
    expect(parseMountSpec("bucket", "b:/x:secret=c")).toMatchObject({ readOnly: false, secret: "c" });
    expect(() => parseMountSpec("bucket", "b:/x:secret=")).toThrow(/unknown option/);
    expect(() => parseMountSpec("volume", "v:/x:secret=c")).toThrow(/unknown option 'secret=c' \(ro or rw\)/);
    expect(() => parseMountSpec("bucket", "b:/x:rx")).toThrow(/unknown option 'rx'/);
  });
});
