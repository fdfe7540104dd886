
import { type FileHandle, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { barrier, mountsFixture, within } from "./helpers/volume-mounts.js";
import { siloServerFixture } from "./helpers/silo-server.js";
import { mulberry32 } from "./helpers/prng.js";

const ROUNDS = Number(process.env.SILO_CRASH_ROUNDS ?? 20);
const SEED = Number(process.env.SILO_CRASH_SEED ?? Date.now() % 1_000_000);

const fx = siloServerFixture();
const { mounts, root } = mountsFixture(fx, "silo-crash-test-", { afterEachTest: false });

/** Acknowledged state: path → bytes. Paths an interrupted operation touched may hold any of their candidates. */
type Model = Map<string, Buffer>;
type Candidates = Map<string, Array<Buffer | null | typeof TORN>>;
/** An interrupted write may leave any mix of old and new bytes: nothing was promised for it. */
const TORN = Symbol("torn");

const DIRS = ["a", "b"];

async function readTree(dir: string, rel = ""): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await readTree(dir, p)) out.set(k, v);
    else out.set(p, await readFile(join(dir, p)));
  }
  return out;
}

describe(`randomized crashes (seed ${SEED}, ${ROUNDS} rounds)`, () => {
  it("after kill -9 of the daemon or the server, every acknowledged change is recovered byte for byte", async () => {
    const random = mulberry32(SEED);
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
    const bytes = (n: number) => {
      const b = Buffer.alloc(n);
      let i = 0;
      for (; i + 4 <= n; i += 4) b.writeUInt32LE((random() * 2 ** 32) >>> 0, i);
      for (; i < n; i++) b[i] = Math.floor(random() * 256);
      return b;
    };
    await fx.silo.volumes.fromName("crash", { createIfMissing: true });
    const dir = join(root, "mnt");
    let model: Model = new Map();
    let candidates: Candidates = new Map();
    let seq = 0;
    const stats = { ops: 0, daemonKills: 0, serverKills: 0, recovered: 0 };

    for (let round = 0; round < ROUNDS; round++) {
      await mounts.mount("crash", dir, "--commit-interval-ms", String(100 + Math.floor(random() * 400)));
      // ---- Recovery check: every acknowledged change is there; an interrupted one is old or new. ----
      const seen = await readTree(dir);
      for (const [p, want] of model) {
        if (candidates.has(p)) continue;
        const got = seen.get(p);
        if (!got?.equals(want)) throw new Error(`round ${round} (seed ${SEED}): ${p} is ${got ? `${got.length} other bytes` : "missing"}, want ${want.length} bytes`);
      }
      for (const [p, got] of seen) {
        const options = candidates.get(p);
        if (options) {
          if (!options.some((o) => o === TORN || o?.equals(got))) throw new Error(`round ${round} (seed ${SEED}): ${p} holds bytes no operation wrote`);
        } else if (!model.has(p)) {
          throw new Error(`round ${round} (seed ${SEED}): ${p} should not exist`);
        }
      }
      for (const [p, options] of candidates) {
        if (!seen.has(p) && !options.includes(null)) throw new Error(`round ${round} (seed ${SEED}): ${p} is missing`);
      }
      // What the mount shows now is the state to go on from.
      model = new Map([...seen].filter(([p]) => !p.endsWith("/")));
      candidates = new Map();
      stats.recovered += seen.size;
      for (const d of DIRS) await mkdir(join(dir, d)).catch(() => {});

      // ---- Workload until a kill lands. ----
      const killServer = random() < 0.3;
      const killAfterMs = 100 + random() * 900;
      const pid = await mounts.daemonPid(dir);
      let killed = false;
      const killer = setTimeout(() => {
        killed = true;
        if (killServer) {
          stats.serverKills++;
          fx.server.proc?.kill("SIGKILL");
        } else {
          stats.daemonKills++;
          process.kill(pid, "SIGKILL");
        }
      }, killAfterMs);
      const deadline = Date.now() + killAfterMs + (killServer ? 600 : 0);
      try {
        while (!(killed && !killServer) && Date.now() < deadline + 2_000) {
          if (killServer && killed && Date.now() > deadline) break;
          const files = [...model.keys()];
          const r = random();
          const touched: Array<[string, Buffer | null | typeof TORN]> = [];
          try {
            stats.ops++;
            if (r < 0.35 || files.length < 3) {
              // Create or overwrite, maybe with an fsync; several blocks now and then.
              const p = random() < 0.5 && files.length ? pick(files) : `${pick(DIRS)}/f${seq++}`;
              const data = bytes(random() < 0.08 ? 8 * 1024 * 1024 + Math.floor(random() * 300_000) : Math.floor(random() * 70_000));
              touched.push([p, TORN]);
              await withFile(join(dir, p), "w", async (fh) => {
                await fh.writeFile(data);
                if (random() < 0.5) await fh.sync();
              });
              model.set(p, data);
            } else if (r < 0.55) {
              const p = pick(files);
              const extra = bytes(Math.floor(random() * 40_000));
              const data = Buffer.concat([model.get(p)!, extra]);
              touched.push([p, TORN]);
              await withFile(join(dir, p), "a", async (fh) => {
                await fh.write(extra);
                if (random() < 0.5) await fh.sync();
              });
              model.set(p, data);
            } else if (r < 0.75) {
              const from = pick(files);
              const to = random() < 0.3 ? pick(files) : `${pick(DIRS)}/r${seq++}`;
              if (from === to) continue;
              touched.push([from, null], [to, model.get(from)!]);
              await rename(join(dir, from), join(dir, to));
              await barrier(dir);
              model.set(to, model.get(from)!);
              model.delete(from);
            } else if (r < 0.9) {
              const p = pick(files);
              touched.push([p, null]);
              await unlink(join(dir, p));
              await barrier(dir);
              model.delete(p);
            } else {
              // Overwrite in place (no truncation), in the middle.
              const p = pick(files);
              const old = model.get(p)!;
              if (old.length < 10) continue;
              const at = Math.floor(random() * (old.length - 5));
              const patch = bytes(Math.min(5_000, old.length - at));
              const data = Buffer.from(old);
              patch.copy(data, at);
              touched.push([p, TORN]);
              await withFile(join(dir, p), "r+", async (fh) => {
                await fh.write(patch, 0, patch.length, at);
                await fh.sync();
              });
              model.set(p, data);
            }
          } catch (err) {
            // The kill landed inside this operation: each path it touched may hold its old or new state.
            if (!killed) throw err;
            for (const [p, next] of touched) {
              const prev = model.get(p) ?? null;
              candidates.set(p, [...(candidates.get(p) ?? [prev]), next]);
            }
            break;
          }
        }
      } finally {
        clearTimeout(killer);
      }
      if (!killed) throw new Error("the kill did not land");
      if (killServer) {
        // The server is back; the daemon goes down hard too, so recovery runs from the journal.
        await within(60_000, "server restart", fx.server.launch());
        process.kill(pid, "SIGKILL");
      }
    }
    // Finally everything reaches the server: a clean unmount commits all of it.
    await mounts.mount("crash", dir, "--commit-interval-ms", "0");
    await mounts.unmount(dir);
    const vol = await fx.silo.volumes.fromName("crash");
    const tree = (await vol.blocks.tree(await vol.blocks.latestVersion())).entries.filter((e) => e.type === "file");
    for (const [p, want] of model) {
      if (candidates.has(p)) continue;
      const chunks: Buffer[] = [];
      for await (const c of vol.readFile(p)) chunks.push(c);
      expect(Buffer.concat(chunks).equals(want), `${p} committed`).toBe(true);
    }
    expect(tree.length).toBeGreaterThanOrEqual(model.size - candidates.size);
    console.log(`crash test seed ${SEED}: ${ROUNDS} rounds, ${stats.ops} operations, ${stats.daemonKills} daemon kills, ${stats.serverKills} server kills`);
  }, 600_000);
});

/** Runs `fn` on an open file and closes it: close is the acknowledgement (an error there is the operation's). */
async function withFile(path: string, flags: string, fn: (fh: FileHandle) => Promise<void>): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fn(fh);
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
  await fh.close();
}

