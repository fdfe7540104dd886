/**
 * A seeded random sequence of file operations run on a volume mount and on a local ext4
 * directory side by side (test/fixtures/posix-ops.py, one process, as root): after every step
 * both give the same outcome (value or errno) and the same tree (type, mode, uid, gid, size,
 * content hash, nlink, mtime); after a remount the volume's tree is still the local one.
 * Every step ends by setting the times it touched to a time of its own, so mtimes compare
 * (test/mount-posix.test.ts shows that writes and name changes move them). Writes open with
 * O_NONBLOCK: a fifo without a reader is then ENXIO instead of a wait forever.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { siloServerFixture } from "./helpers/silo-server.js";
import { Mounts, within } from "./helpers/volume-mounts.js";
import { mulberry32 } from "./helpers/prng.js";
import { PYTHON } from "./helpers/python.js";

const OPS = resolve(import.meta.dirname, "fixtures/posix-ops.py");
const SEED = Number(process.env.SILO_POSIX_SEED ?? 16);
const STEPS = 300;

const fx = siloServerFixture();
let mounts: Mounts;
let root: string;

beforeAll(() => {
  mounts = new Mounts(fx.server);
  root = mkdtempSync(join(tmpdir(), "silo-posix-random-"));
  chmodSync(root, 0o755);
});
afterAll(async () => {
  await mounts?.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});


/** Python templates of `steps` random operations; `{d}` stands for the tree's root. */
function sequence(seed: number, steps: number): string[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (n: number) => Math.floor(rnd() * n);
  // A small name space, so operations meet each other's names (and their errors).
  const dirs = ["", "a/", "b/", "a/c/"];
  const path = () => `${pick(dirs)}${pick(["a", "b", "c", "f", "g", "h"])}`;
  const q = (p: string) => JSON.stringify(`{d}/${p}`);
  const parentOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
  const out: string[] = [];
  for (let i = 0; i < steps; i++) {
    const p = path();
    const t = 1_600_000_000_000_000_000n + BigInt(i) * 1_000_000_007n;
    // After the operation: the times of what it touched (the node, its parent), as one step's own.
    const touched = new Set([p, parentOf(p)]);
    let op: string;
    switch (pick(["create", "write", "write", "truncate", "chmod", "chown", "utimens", "link", "unlink", "rename", "exchange", "mkdir", "mkdir", "rmdir", "symlink", "mkfifo"])) {
      case "create":
        op = `write(${q(p)}, ${JSON.stringify("x".repeat(int(5000)))}, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK, mode=${pick([0o644, 0o600, 0o755])})`;
        break;
      case "write":
        op = `write(${q(p)}, ${JSON.stringify(String.fromCharCode(97 + int(26)).repeat(1 + int(3000)))}, off=${int(9000)}, flags=os.O_WRONLY | os.O_NONBLOCK)`;
        break;
      case "truncate":
        op = `os.truncate(${q(p)}, ${int(12000)})`;
        break;
      case "chmod":
        op = `os.chmod(${q(p)}, ${pick([0o644, 0o600, 0o755, 0o4755, 0o2775, 0o1777, 0o000])})`;
        break;
      case "chown":
        op = `os.chown(${q(p)}, ${pick([0, 1000, 65534])}, ${pick([0, 100, 65534])}, follow_symlinks=False)`;
        break;
      case "utimens":
        op = `os.utime(${q(p)}, ns=(${int(2 ** 31)}, ${int(2 ** 31)}), follow_symlinks=False)`;
        break;
      case "link": {
        const to = path();
        touched.add(to).add(parentOf(to));
        op = `os.link(${q(p)}, ${q(to)}, follow_symlinks=False)`;
        break;
      }
      case "unlink":
        op = `os.unlink(${q(p)})`;
        break;
      case "rename": {
        const to = path();
        touched.add(to).add(parentOf(to));
        op = `os.rename(${q(p)}, ${q(to)})`;
        break;
      }
      case "exchange": {
        const to = path();
        touched.add(to).add(parentOf(to));
        op = `exchange(${q(p)}, ${q(to)})`;
        break;
      }
      case "mkdir":
        op = `os.mkdir(${q(p.replace(/[a-z]$/, pick(["a", "b", "c"])))}, ${pick([0o755, 0o700, 0o2775])})`;
        touched.add(p.replace(/[a-z]$/, "a")).add(p.replace(/[a-z]$/, "b")).add(p.replace(/[a-z]$/, "c"));
        break;
      case "rmdir":
        op = `os.rmdir(${q(p.replace(/[a-z]$/, pick(["a", "b", "c"])))})`;
        break;
      case "symlink":
        op = `os.symlink(${JSON.stringify(pick(["f", "../g", "a/c", "nowhere"]))}, ${q(p)})`;
        break;
      default:
        op = `os.mkfifo(${q(p)}, ${pick([0o644, 0o600])})`;
    }
    const stamp = [...touched]
      .filter((x) => x !== "")
      .map((x) => `os.utime(${q(x)}, ns=(${t}, ${t}), follow_symlinks=False) if os.path.lexists(${q(x)}) else None`);
    // The op's value is the step's outcome; the stamps run only if it succeeded.
    out.push(`(lambda r: r[0])([${[op, ...stamp].join(", ")}])`);
  }
  return out;
}

interface Step {
  results: Array<{ ok?: unknown; err?: string }>;
  trees: Array<Record<string, unknown>>;
}

async function run(exprs: string[]): Promise<Step[]> {
  return within(
    600_000,
    "posix-ops",
    new Promise((res, rej) => {
      // The expressions go through stdin: they outgrow an argument.
      const child = execFile(PYTHON, [OPS, "-", "/"], { maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) rej(new Error(`posix-ops failed: ${stderr}`));
        else res((JSON.parse(stdout) as Array<{ ok?: Step; err?: string }>).map((r) => r.ok ?? ({ results: [{ err: r.err }], trees: [] } as Step)));
      });
      child.stdin?.end(JSON.stringify(exprs));
    }),
  );
}

describe("random operations on a mount and on ext4", () => {
  it(`agree after every step and after a remount (seed ${SEED})`, async () => {
    await fx.silo.volumes.fromName("random", { createIfMissing: true });
    const mnt = join(root, "mnt");
    const local = join(root, "local");
    mkdirSync(mnt);
    mkdirSync(local);
    await mounts.mount("random", mnt);
    // Directories the sequence's names live in, on both.
    const setup = ["a", "b", "a/c"].flatMap((d) => [mnt, local].map((r) => `os.mkdir(${JSON.stringify(join(r, d))}, 0o755)`));
    setup.push(...["a", "b", "a/c"].flatMap((d) => [mnt, local].map((r) => `os.utime(${JSON.stringify(join(r, d))}, ns=(1, 1))`)));
    await run(setup);
    const templates = sequence(SEED, STEPS);
    const steps = await run(templates.map((t) => `both(${JSON.stringify(t)}, ${JSON.stringify([mnt, local])})`));
    for (const [i, step] of steps.entries()) {
      const what = `step ${i}: ${templates[i]}`;
      expect(step.results[0], what).toEqual(step.results[1]);
      expect(step.trees[0], what).toEqual(step.trees[1]);
    }
    const before = steps.at(-1)!.trees[1];
    await mounts.unmount(mnt);
    await mounts.mount("random", mnt);
    const [after] = await run([`tree(${JSON.stringify(mnt)})`]);
    expect(after as unknown).toEqual(before);
  }, 900_000);
});
