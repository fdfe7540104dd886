/**
 * `npm run bench:floors`: what issue 13's transfer targets would leave to a client/server design
 * on this machine. In one run, alternated, median of `--runs` (3), each against its peer:
 * - get: `cp` of a file in the page cache, against the least a get can do: one process reads
 *   the file (8 MiB preads) and writes it to a loopback TCP socket, another reads the socket
 *   into one reused buffer (socket reads straight into it) and pwrites it to a new file. No
 *   HTTP, no verification, no block lookup: a floor, not a design.
 * - put: `cp` + `sync` of the copy, against the same pipe with the safety a content-addressed store keeps:
 *   the sender hashes each 8 MiB block (SHA-256, to name it) before sending it, the receiver
 *   hashes it again (it does not trust the client), writes it and fdatasyncs the file.
 * Prints wall seconds, CPU-seconds of both sides per GiB and the ratio to the peer.
 * `--size-mib N` (1024), `--runs N` (3).
 */
import { execFileSync, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, fdatasyncSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import net from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";

const MiB = 1024 * 1024;
const BLOCK = 8 * MiB;

interface Cost {
  wall: number;
  cpu: number;
}

/** Wall seconds and CPU-seconds (user + system, of its children) of a shell command. */
function timed(cmd: string): Cost {
  const out = execFileSync("bash", ["-c", `s=$(date +%s.%N); ${cmd}; e=$(date +%s.%N); echo "$s $e"; times`], { encoding: "utf8" });
  const [span, , children] = out.trim().split("\n");
  const [start, end] = span!.split(" ").map(Number);
  // `times` prints the children's user and system time as "0m1.234s 0m0.567s".
  const cpu = children!.split(/\s+/).reduce((sum, t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return sum + (m ? Number(m[1]) * 60 + Number(m[2]) : 0);
  }, 0);
  return { wall: end! - start!, cpu };
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** The sending side: reads `path` block by block (hashing each if `hash`), writes it to the first connection. */
function sender(path: string, hash: boolean): void {
  const server = net.createServer((socket) => {
    const c0 = cpuNow();
    const fd = openSync(path, "r");
    // Two buffers: one may still be queued in the socket while the next is read.
    const bufs = [Buffer.allocUnsafe(BLOCK), Buffer.allocUnsafe(BLOCK)];
    let turn = 0;
    const pump = (): void => {
      for (;;) {
        const buf = bufs[turn++ % 2]!;
        const n = readSync(fd, buf, 0, BLOCK, null);
        if (n === 0) {
          closeSync(fd);
          socket.end();
          return;
        }
        if (hash) createHash("sha256").update(buf.subarray(0, n)).digest();
        if (!socket.write(buf.subarray(0, n))) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    socket.on("close", () => process.send?.({ cpu: cpuNow() - c0 }, () => process.exit(0)));
    pump();
  });
  server.listen(0, "127.0.0.1", () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
}

/**
 * One transfer into `dest`: socket reads land in a block buffer; each full block is (hashed if
 * `hash`) written at its offset; with `hash` the file is fdatasync'd at the end.
 */
async function transfer(src: string, dest: string, hash: boolean): Promise<Cost> {
  const child = fork(import.meta.filename, ["--sender", src, hash ? "hash" : "plain"]);
  const next = () => new Promise<{ port?: number; cpu?: number }>((res) => child.once("message", (m) => res(m as { port?: number; cpu?: number })));
  const { port } = await next();
  const done = next();
  const t0 = performance.now();
  const c0 = cpuNow();
  const fd = openSync(dest, "w", 0o600);
  const block = Buffer.allocUnsafe(BLOCK);
  let filled = 0;
  let offset = 0;
  const flush = () => {
    if (filled === 0) return;
    if (hash) createHash("sha256").update(block.subarray(0, filled)).digest();
    writeSync(fd, block, 0, filled, offset);
    offset += filled;
    filled = 0;
  };
  await new Promise<void>((res, rej) => {
    const socket = net.connect({
      port: port!,
      host: "127.0.0.1",
      onread: {
        // Each read lands where the block continues; a full block is written before the next read.
        buffer: () => block.subarray(filled),
        callback: (n: number) => {
          filled += n;
          if (filled === BLOCK) flush();
          return true;
        },
      },
    });
    socket.on("end", res).on("error", rej);
  });
  flush();
  if (hash) fdatasyncSync(fd);
  closeSync(fd);
  const wall = (performance.now() - t0) / 1000;
  return { wall, cpu: cpuNow() - c0 + (await done).cpu! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const size = arg("--size-mib", 1024) * MiB;
  const runs = arg("--runs", 3);
  const dir = mkdtempSync(join(tmpdir(), "silo-floors-"));
  try {
    const src = join(dir, "src");
    const fd = openSync(src, "w", 0o600);
    for (let off = 0; off < size; off += BLOCK) writeSync(fd, Buffer.alloc(BLOCK, off / BLOCK));
    closeSync(fd);
    execFileSync("sync");
    execFileSync("cat", [src], { stdio: "ignore" }); // in the page cache, as for `cp`
    const rows = { cp: [] as Cost[], get: [] as Cost[], cpSync: [] as Cost[], put: [] as Cost[] };
    const out = (name: string) => join(dir, name);
    for (let r = 0; r < runs; r++) {
      // Alternated: the peer first in even runs.
      const pair = async (peer: () => Cost, ours: () => Promise<Cost>): Promise<[Cost, Cost]> => {
        if (r % 2 === 0) {
          const p = peer();
          return [p, await ours()];
        }
        const o = await ours();
        return [peer(), o];
      };
      const [cp, get] = await pair(() => timed(`cp ${src} ${out("cp")}`), () => transfer(src, out("get"), false));
      rows.cp.push(cp);
      rows.get.push(get);
      // `sync FILE` syncs the copy alone, as bench/volume.ts does: a bare `sync` also wrote back the
      // get row's output and anything else dirty, which made the peer slower than like for like.
      const [cpSync, put] = await pair(() => timed(`cp ${src} ${out("cps")} && sync ${out("cps")}`), () => transfer(src, out("put"), true));
      rows.cpSync.push(cpSync);
      rows.put.push(put);
      for (const name of ["cp", "get", "cps", "put"]) rmSync(out(name), { force: true });
    }
    const gib = size / 1024 ** 3;
    const f = (n: number) => n.toFixed(2);
    const line = (label: string, xs: Cost[]) => `${label.padEnd(44)} ${f(median(xs.map((c) => c.wall)) / gib).padStart(6)} s/GiB ${f(median(xs.map((c) => c.cpu)) / gib).padStart(6)} CPU-s/GiB`;
    const ratio = (a: Cost[], b: Cost[]) => f(median(a.map((c) => c.wall)) / median(b.map((c) => c.wall)));
    console.log(`floors of a client/server transfer, ${size / MiB} MiB, median of ${runs} alternated runs (load ${execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).split(" ").slice(0, 3).join(" ")})\n`);
    console.log(line("cp (source in the page cache)", rows.cp));
    console.log(line("minimal get (pread, socket, pwrite)", rows.get));
    console.log(line("cp + sync", rows.cpSync));
    console.log(line("minimal put (+ SHA-256 both sides, fdatasync)", rows.put));
    console.log(`\nminimal get / cp        = ${ratio(rows.get, rows.cp)}x   (issue 13: volume get <= 1.10x)`);
    console.log(`minimal put / cp + sync = ${ratio(rows.put, rows.cpSync)}x   (issue 13: volume put <= 1.25x)`);
    // However well both sides overlap, the wall time cannot fall below their CPU time spread over every core.
    const cores = availableParallelism();
    const bound = (xs: Cost[], peer: Cost[]) => f(median(xs.map((c) => c.cpu)) / cores / median(peer.map((c) => c.wall)));
    console.log(`\nwith ${cores} cores, perfectly overlapped: get >= ${bound(rows.get, rows.cp)}x cp, put >= ${bound(rows.put, rows.cpSync)}x cp + sync`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--sender") sender(process.argv[3]!, process.argv[4] === "hash");
else await main();
