// npm run bench:bucket — silo bucket mount vs s3fs and rclone mount, on the same local S3 server.
// Rows: 1 GiB sequential write (until the object is complete in the bucket), 1 GiB sequential
// read (fresh mount: no cache), `ls` of a 10,000-key prefix (fresh mount), create+stat of 1,000
// small files (until all are in the bucket). Prints MiB/s or seconds and silo's ratio to each peer.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { CloudBucketMount } from "../client/cloud-bucket-mount.js";
import { type BucketMountHandle, mountCloudBucket } from "../fuse/bucket/mount.js";
import { makeS3Client } from "../lib/s3-client.js";
import { isMounted, lazyUnmount } from "../fuse/common/mount-table.js";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "../..");
const ENDPOINT = `http://127.0.0.1:${process.env.SILO_S3_PORT ?? 18080}`;
const CREDS = { accessKeyId: "test:tester", secretAccessKey: "testing" };
const GiB = 1024 ** 3;
const SIZE = Number(process.env.BENCH_BUCKET_BYTES ?? GiB);
const LIST_KEYS = 10_000;
const SMALL_FILES = 1000;
const LIST_BUCKET = "bench-list-10k";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now() / 1000;

interface Tool {
  name: string;
  mount(bucket: string, dir: string): Promise<void>;
  unmount(dir: string): Promise<void>;
}

async function waitMounted(dir: string, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await isMounted(dir)) return;
    await sleep(50);
  }
  throw new Error(`${what} did not mount ${dir}`);
}

async function fuseUnmount(dir: string): Promise<void> {
  await run("fusermount", ["-u", dir]).catch(() => lazyUnmount(dir));
  for (let i = 0; i < 100 && (await isMounted(dir)); i++) await sleep(50);
}

const silo = (writeBack: boolean): Tool => {
  const handles = new Map<string, BucketMountHandle>();
  return {
    name: writeBack ? "silo-wb" : "silo",
    async mount(bucket, dir) {
      const env = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, AWS_REGION: "us-east-1" };
      handles.set(dir, await mountCloudBucket(new CloudBucketMount(bucket, { bucketEndpointUrl: ENDPOINT }), dir, { env, writeBack }));
    },
    async unmount(dir) {
      await handles.get(dir)?.unmount();
      handles.delete(dir);
    },
  };
};

const s3fs = (): Tool => ({
  name: "s3fs",
  async mount(bucket, dir) {
    await run("s3fs", [bucket, dir, "-o", `url=${ENDPOINT}`, "-o", "use_path_request_style", "-o", "endpoint=us-east-1"], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey },
    });
    await waitMounted(dir, "s3fs");
  },
  unmount: fuseUnmount,
});

const rclone = (work: string): Tool => {
  const conf = join(work, "rclone.conf");
  writeFileSync(
    conf,
    `[remote]\ntype = s3\nprovider = Other\naccess_key_id = ${CREDS.accessKeyId}\nsecret_access_key = ${CREDS.secretAccessKey}\nendpoint = ${ENDPOINT}\nregion = us-east-1\nforce_path_style = true\n`,
  );
  return {
    name: "rclone",
    async mount(bucket, dir) {
      const cacheDir = join(work, "rclone-cache");
      rmSync(cacheDir, { recursive: true, force: true }); // every mount starts cold, like the others
      const env = { ...process.env };
      delete env.AWS_CA_BUNDLE; // rclone 1.60 fails when it is set
      await run("rclone", ["--config", conf, "mount", `remote:${bucket}`, dir, "--daemon", "--vfs-cache-mode", "writes", "--vfs-write-back", "0s", "--cache-dir", cacheDir], { env });
      await waitMounted(dir, "rclone");
    },
    unmount: fuseUnmount,
  };
};

async function installPeers(): Promise<void> {
  const missing: string[] = [];
  for (const p of ["s3fs", "rclone"]) {
    const ok = await run("dpkg-query", ["-W", "-f=${Status}", p]).then((r) => r.stdout.includes("install ok installed"), () => false);
    if (!ok) missing.push(p);
  }
  if (!missing.length) return;
  console.log(`Installing ${missing.join(", ")} from Debian…`);
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-qq"]);
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", ...missing], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

async function ensureBucket(s3: S3Client, name: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: name })).catch((err: Error) => {
    if (err.name !== "BucketAlreadyOwnedByYou" && err.name !== "BucketAlreadyExists") throw err;
  });
}

async function countKeys(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    n += res.KeyCount ?? 0;
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return n;
}

/** The 10,000-key prefix, made once and kept between runs. */
async function populateListBucket(s3: S3Client): Promise<void> {
  await ensureBucket(s3, LIST_BUCKET);
  if ((await countKeys(s3, LIST_BUCKET, "k/")) >= LIST_KEYS) return;
  console.log(`Putting ${LIST_KEYS} keys in ${LIST_BUCKET}/k/ (once)…`);
  const names = Array.from({ length: LIST_KEYS }, (_, i) => `k/key-${String(i).padStart(6, "0")}`);
  for (let i = 0; i < names.length; i += 128) {
    await Promise.all(names.slice(i, i + 128).map((Key) => s3.send(new PutObjectCommand({ Bucket: LIST_BUCKET, Key, Body: "x" }))));
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutS = 600): Promise<void> {
  const deadline = now() + timeoutS;
  while (!(await check())) {
    if (now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A child process doing `n` × (write a 1 KiB file; stat it), like a job would. */
function createAndStat(dir: string, n: number): Promise<void> {
  const code = `const fs=require("fs");const b=Buffer.alloc(1024,97);for(let i=0;i<${n};i++){const p=${JSON.stringify(dir)}+"/f"+i;fs.writeFileSync(p,b);if(fs.statSync(p).size!==1024)throw new Error("size")}`;
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ["-e", code], { stdio: "inherit" });
    child.on("exit", (c) => (c === 0 ? ok() : fail(new Error(`create+stat exited ${c}`))));
  });
}

interface Row {
  write: number;
  read: number;
  ls: number;
  create: number;
}

async function benchTool(tool: Tool, s3: S3Client, work: string): Promise<Row> {
  const bucket = `bench-${tool.name}-${Date.now().toString(36)}`;
  await ensureBucket(s3, bucket);
  const dir = mkdtempSync(join(work, `${tool.name}-`));
  const row: Row = { write: 0, read: 0, ls: 0, create: 0 };
  const mib = SIZE / 1024 / 1024;
  try {
    await tool.mount(bucket, dir);
    let t = now();
    await run("dd", ["if=/dev/zero", `of=${dir}/big.bin`, "bs=1M", `count=${mib}`, "status=none"]);
    await waitFor("the 1 GiB object", async () =>
      s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "big.bin" })).then((h) => h.ContentLength === SIZE, () => false),
    );
    row.write = mib / (now() - t);
    await tool.unmount(dir);

    await tool.mount(bucket, dir);
    t = now();
    await run("dd", [`if=${dir}/big.bin`, "of=/dev/null", "bs=1M", "status=none"]);
    row.read = mib / (now() - t);

    await run("mkdir", [`${dir}/small`]);
    t = now();
    await createAndStat(`${dir}/small`, SMALL_FILES);
    await waitFor("1,000 small objects", async () => (await countKeys(s3, bucket, "small/")) >= SMALL_FILES);
    row.create = now() - t;
    await tool.unmount(dir);

    await tool.mount(LIST_BUCKET, dir);
    t = now();
    const { stdout } = await run("ls", ["-1", `${dir}/k`], { maxBuffer: 16 << 20 });
    row.ls = now() - t;
    const listed = stdout.trim().split("\n").length;
    if (listed !== LIST_KEYS) throw new Error(`${tool.name}: ls listed ${listed} of ${LIST_KEYS} keys`);
    await tool.unmount(dir);
  } finally {
    if (await isMounted(dir)) await lazyUnmount(dir).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  return row;
}

async function main(): Promise<void> {
  await run("bash", [join(REPO, "scripts/s3-server.sh"), "start"], { timeout: 600_000 });
  await installPeers();
  const s3 = makeS3Client({ endpoint: ENDPOINT, region: "us-east-1", credentials: CREDS });
  await populateListBucket(s3);
  const work = mkdtempSync(join(tmpdir(), "silo-bench-bucket-"));
  const tools = [silo(false), silo(true), s3fs(), rclone(work)];
  const only = process.env.BENCH_TOOLS?.split(",");
  const rows = new Map<string, Row>();
  for (const tool of tools) {
    if (only && !only.includes(tool.name)) continue;
    console.log(`… ${tool.name}`);
    rows.set(tool.name, await benchTool(tool, s3, work));
  }
  s3.destroy();
  rmSync(work, { recursive: true, force: true });

  // Like against like: close-waits-for-upload silo vs s3fs and rclone; write-back silo vs rclone (which writes back).
  const pairs = ([["silo", "s3fs"], ["silo", "rclone"], ["silo-wb", "rclone"]] as const).filter(([a, b]) => rows.has(a) && rows.has(b));
  const fmt = (v: number, unit: string) => (unit === "MiB/s" ? `${v.toFixed(0)} MiB/s` : `${v.toFixed(2)} s`);
  const lines = [
    `| operation | ${[...rows.keys()].join(" | ")} | ${pairs.map(([a, b]) => `${a} vs ${b}`).join(" | ")} |`,
    `|---|${[...rows.keys()].map(() => "---:").join("|")}|${pairs.map(() => "---:").join("|")}|`,
  ];
  const metrics: Array<[keyof Row, string, string, boolean]> = [
    ["write", `sequential write ${SIZE / GiB} GiB (until complete in the bucket)`, "MiB/s", true],
    ["read", `sequential read ${SIZE / GiB} GiB (fresh mount)`, "MiB/s", true],
    ["ls", `ls of a ${LIST_KEYS.toLocaleString("en")}-key prefix (fresh mount)`, "s", false],
    ["create", `create+stat of ${SMALL_FILES.toLocaleString("en")} 1 KiB files (until all in the bucket)`, "s", false],
  ];
  for (const [key, label, unit, higherIsBetter] of metrics) {
    const cells = [...rows.values()].map((r) => fmt(r[key], unit));
    const ratios = pairs.map(([a, b]) => {
      const [x, y] = [rows.get(a)![key], rows.get(b)![key]];
      return `${(higherIsBetter ? x / y : y / x).toFixed(2)}×`;
    });
    lines.push(`| ${label} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
  }
  console.log(`\n${lines.join("\n")}\n\n(silo-wb = silo with --write-back; ratios > 1 mean silo is ahead)`);
}

await main();
process.exit(0);
