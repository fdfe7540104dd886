import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SiloClient } from "../../client/index.js";

const SILO_BIN = resolve(import.meta.dirname, "../../../bin/silo.js");
/** Linux's USER_HZ, the unit of /proc/PID/stat times (100 on every mainstream architecture). */
const CLOCK_TICKS = 100;

/** A `silo serve` of the built code on a free port with a throw-away home, for benchmarks. */
export class BenchSilo {
  private constructor(
    private readonly proc: ChildProcess,
    private readonly home: string,
    readonly url: string,
  ) {}

  static async start(args: string[] = []): Promise<BenchSilo> {
    const home = mkdtempSync(join(tmpdir(), "silo-bench-"));
    const proc = spawn(process.execPath, [SILO_BIN, "serve", "--port", "0", "--log-level", "warn", ...args], {
      env: { ...process.env, SILO_HOME: home },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const url = await new Promise<string>((ok, fail) => {
      let out = "";
      proc.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /silo is serving at (\S+)/.exec(out);
        if (m) ok(m[1]!);
      });
      proc.once("exit", (code) => fail(new Error(`silo serve exited with ${code}`)));
    });
    return new BenchSilo(proc, home, url);
  }

  private profile(): { tokenId: string; tokenSecret: string } {
    return JSON.parse(readFileSync(join(this.home, "config.json"), "utf8")) as { tokenId: string; tokenSecret: string };
  }

  client(): SiloClient {
    const { tokenId, tokenSecret } = this.profile();
    return new SiloClient({ serverUrl: this.url, tokenId, tokenSecret });
  }

  /** Environment for a `silo` CLI child acting as the admin of this server. */
  get env(): NodeJS.ProcessEnv {
    const { tokenId, tokenSecret } = this.profile();
    return { ...process.env, SILO_HOME: this.home, SILO_SERVER_URL: this.url, SILO_TOKEN_ID: tokenId, SILO_TOKEN_SECRET: tokenSecret };
  }

  /** CPU seconds (user + system) the server process has used so far. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.proc.pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }

  /** The admin's `authorization` header, for raw HTTP requests. */
  authorization(): string {
    const { tokenId, tokenSecret } = this.profile();
    return `Bearer ${tokenId}:${tokenSecret}`;
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await exited;
    rmSync(this.home, { recursive: true, force: true });
  }
}
