// npm run bench:bucket — silo bucket mount vs s3fs and rclone mount, on the same local S3 server.
// Rows: 1 GiB sequential write (until the object is complete in the bucket), 1 GiB sequential
// read (fresh mount: no cache), `ls` of a 10,000-key prefix (fresh mount), create+stat of 1,000
// small files (until all are in the bucket). Prints MiB/s or seconds (median of BENCH_TURNS turns,
// default 3) and silo's ratio to each peer. BENCH_TOOLS and BENCH_METRICS (comma lists) pick a subset.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { DeleteBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { CloudBucketMount } from "../client/cloud-bucket-mount.js";
import { type BucketMountHandle, mountCloudBucket } from "../fuse/bucket/mount.js";
import { makeS3Client } from "../lib/s3-client.js";
import { isMounted, lazyUnmount } from "../fuse/common/mount-table.js";
import { emptyBucket, ensureBucket } from "./lib/s3-buckets.js";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "../..");
const ENDPOINT = `http://127.0.0.1:${process.env.SILO_S3_PORT ?? 18080}`;
const CREDS = { accessKeyId: "test:tester", secretAccessKey: "testing" };
const GiB = 1024 ** 3;
const SIZE = Number(process.env.BENCH_BUCKET_BYTES ?? GiB);
const LIST_KEYS = 10_000;
const SMALL_FILES = 1000;
const LIST_BUCKET = "bench-list-10k";
const TURNS = Number(process.env.BENCH_TURNS ?? 3);

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

/**
 * rclone mount as it comes (`--vfs-cache-mode off`: close waits for the upload, like silo), or with
 * its write cache and immediate write-back ("rclone-wb": close returns before the upload, like silo-wb).
 */
const rclone = (work: string, writeBack: boolean): Tool => {
  const conf = join(work, "rclone.conf");
  writeFileSync(
    conf,
    `[remote]\ntype = s3\nprovider = Other\naccess_key_id = ${CREDS.accessKeyId}\nsecret_access_key = ${CREDS.secretAccessKey}\nendpoint = ${ENDPOINT}\nregion = us-east-1\nforce_path_style = true\n`,
  );
  const name = writeBack ? "rclone-wb" : "rclone";
  return {
    name,
    async mount(bucket, dir) {
      const cacheDir = join(work, `${name}-cache`);
      rmSync(cacheDir, { recursive: true, force: true }); // every mount starts cold, like the others
      const env = { ...process.env };
      delete env.AWS_CA_BUNDLE; // rclone 1.60 fails when it is set
      const mode = writeBack ? ["--vfs-cache-mode", "writes", "--vfs-write-back", "0s"] : [];
      await run("rclone", ["--config", conf, "mount", `remote:${bucket}`, dir, "--daemon", ...mode, "--cache-dir", cacheDir], { env });
      await waitMounted(dir, name);
    },
    unmount: fuseUnmount,
  };
};

async function installPeers(): Promise<void> {
  const missing: string[] = [];
  for (const p of ["s3fs", "rclone"]) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    const ok = await run("dpkg-query", ["-W", "-f=${Status}", p]).then((r) => r.stdout.includes("install ok installed"), () => false);
    if (!ok) missing.push(p);
  }
  if (!missing.length) return;
  console.log(`Installing ${missing.join(", ")} from Debian…`);
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-qq"]);
  await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", ...missing], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
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

type Metric = "write" | "read" | "ls" | "create";
type Row = Record<Metric, number>;

/** One measurement of one metric for one tool, on a fresh mount (each tool has its own bucket). */
async function measure(metric: Metric, tool: Tool, bucket: string, s3: S3Client, dir: string, turn: number): Promise<number> {
  const mib = SIZE / 1024 / 1024;
  await tool.mount(metric === "ls" ? LIST_BUCKET : bucket, dir);
  try {
    const t = now();
    switch (metric) {
      case "write": {
        const key = `big-${turn}.bin`;
        await run("dd", ["if=/dev/zero", `of=${dir}/${key}`, "bs=1M", `count=${mib}`, "status=none"]);
        await waitFor("the large object", async () =>
          s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then((h) => h.ContentLength === SIZE, () => false),
        );
        return mib / (now() - t);
      }
      case "read":
        await run("dd", [`if=${dir}/big-0.bin`, "of=/dev/null", "bs=1M", "status=none"]);
        return mib / (now() - t);
      case "ls": {
        const { stdout } = await run("ls", ["-1", `${dir}/k`], { maxBuffer: 16 << 20 });
        const elapsed = now() - t;
        const listed = stdout.trim().split("\n").length;
        if (listed !== LIST_KEYS) throw new Error(`${tool.name}: ls listed ${listed} of ${LIST_KEYS} keys`);
        return elapsed;
      }
      case "create": {
        await run("mkdir", [`${dir}/small-${turn}`]);
        const t0 = now();
        await createAndStat(`${dir}/small-${turn}`, SMALL_FILES);
        await waitFor("1,000 small objects", async () => (await countKeys(s3, bucket, `small-${turn}/`)) >= SMALL_FILES);
        return now() - t0;
      }
    }
  } finally {
    await tool.unmount(dir);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await run("bash", [join(REPO, "scripts/s3-server.sh"), "start"], { timeout: 600_000 });
  await installPeers();
  const s3 = makeS3Client({ endpoint: ENDPOINT, region: "us-east-1", credentials: CREDS });
  await populateListBucket(s3);
  const work = mkdtempSync(join(tmpdir(), "silo-bench-bucket-"));
  const tools = [silo(false), silo(true), s3fs(), rclone(work, false), rclone(work, true)];
  const only = process.env.BENCH_TOOLS?.split(",");
  const active = tools.filter((t) => !only || only.includes(t.name));
  const buckets = new Map<string, string>();
  const dirs = new Map<string, string>();
  for (const tool of active) {
    const bucket = `bench-${tool.name}-${Date.now().toString(36)}`;
    await ensureBucket(s3, bucket);
    buckets.set(tool.name, bucket);
    dirs.set(tool.name, mkdtempSync(join(work, `${tool.name}-`)));
  }
  // Tools take turns within each metric (order rotating), and the median turn counts, so load
  // from other processes on the machine hits them alike.
  const samples = new Map<string, Record<Metric, number[]>>(active.map((t) => [t.name, { write: [], read: [], ls: [], create: [] }]));
  const metrics = (process.env.BENCH_METRICS?.split(",") ?? ["write", "read", "ls", "create"]) as Metric[];
  if (metrics.includes("read") && !metrics.includes("write")) throw new Error("BENCH_METRICS: read reads the file that write wrote; include write");
  for (const metric of metrics) {
    for (let turn = 0; turn < TURNS; turn++) {
      for (let i = 0; i < active.length; i++) {
        const tool = active[(i + turn) % active.length]!;
        const value = await measure(metric, tool, buckets.get(tool.name)!, s3, dirs.get(tool.name)!, turn);
        samples.get(tool.name)![metric].push(value);
        console.log(`  ${metric} turn ${turn + 1}: ${tool.name} ${value.toFixed(2)}`);
      }
    }
  }
  const rows = new Map<string, Row>(
    [...samples].map(([name, s]) => [name, { write: median(s.write), read: median(s.read), ls: median(s.ls), create: median(s.create) }]),
  );
  for (const dir of dirs.values()) if (await isMounted(dir)) await lazyUnmount(dir);
  rmSync(work, { recursive: true, force: true });
  for (const bucket of buckets.values()) {
    await emptyBucket(s3, bucket);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  }
  s3.destroy();

  // Like against like: close-waits-for-upload silo vs s3fs and rclone; write-back silo vs rclone's write-back.
  const pairs = ([["silo", "s3fs"], ["silo", "rclone"], ["silo-wb", "rclone-wb"]] as const).filter(([a, b]) => rows.has(a) && rows.has(b));
  const fmt = (v: number, unit: string) => (unit === "MiB/s" ? `${v.toFixed(0)} MiB/s` : `${v.toFixed(2)} s`);
  const lines = [
    `| operation | ${[...rows.keys()].join(" | ")} | ${pairs.map(([a, b]) => `${a} vs ${b}`).join(" | ")} |`,
    `|---|${[...rows.keys()].map(() => "---:").join("|")}|${pairs.map(() => "---:").join("|")}|`,
  ];
  const labels: Array<[Metric, string, string, boolean]> = [
    ["write", `sequential write ${SIZE / GiB} GiB (until complete in the bucket)`, "MiB/s", true],
    ["read", `sequential read ${SIZE / GiB} GiB (fresh mount)`, "MiB/s", true],
    ["ls", `ls of a ${LIST_KEYS.toLocaleString("en")}-key prefix (fresh mount)`, "s", false],
    ["create", `create+stat of ${SMALL_FILES.toLocaleString("en")} 1 KiB files (until all in the bucket)`, "s", false],
  ];
  for (const [key, label, unit, higherIsBetter] of labels.filter(([m]) => metrics.includes(m))) {
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
