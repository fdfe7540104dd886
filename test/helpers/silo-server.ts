import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { SiloClient, type SiloClientOptions } from "../../client/index.js";
import { type BlobBackend, type TestBlobs, localBlobs, testBlobs } from "./blob-backend.js";
import { afterAll, beforeAll } from "vitest";
import { eventually } from "./eventually.js";
import { SILO_BIN } from "./repo.js";

export { REPO, SILO_BIN } from "./repo.js";

export interface Profile {
  serverUrl: string;
  tokenId: string;
  tokenSecret: string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A real `silo serve` in its own process, with a temporary SILO_HOME. The first start binds a
 * port the kernel picks (`--port 0`: no window in which another process could take a port chosen
 * for it); every later start (`restart()`, `launch()`) serves on that same port, so clients and
 * mount daemons find the restarted server where they left it. `restart()` keeps the home
 * (durability tests); `stop()` removes nothing, `cleanup()` does.
 * With SILO_TEST_BLOBS=s3 (the vitest project "s3") its volume blocks live in a fresh prefix
 * of a bucket on the test S3 server, unless the test passes its own `--blobs`.
 */
export class SiloServer {
  proc: ChildProcess | undefined;
  profile!: Profile;
  /** The port of the first start, kept by every restart. */
  port: number | undefined;
  private log = "";

  constructor(
    readonly home: string,
    readonly args: string[] = [],
    /** Where its volume blocks live (the `--blobs` backend the test run chose). */
    readonly blobs: TestBlobs = localBlobs(),
  ) {}

  /** `opts.blobs` overrides the run's blob backend (e.g. a suite about the S3 backend itself). */
  static async start(args: string[] = [], opts: { blobs?: BlobBackend } = {}): Promise<SiloServer> {
    const blobs = await testBlobs(args, opts.blobs);
    const server = new SiloServer(mkdtempSync(join(tmpdir(), "silo-test-")), [...args, ...blobs.args], blobs);
    try {
      await server.launch();
    } catch (err) {
      // Tests that expect a failed start get no handle to clean up with: leave no home behind.
      await server.cleanup();
      throw err;
    }
    return server;
  }

  get url(): string {
    return this.profile.serverUrl;
  }

  /** Environment a child process needs to act as this server's admin. */
  get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      SILO_HOME: this.home,
      SILO_SERVER_URL: this.url,
      SILO_TOKEN_ID: this.profile.tokenId,
      SILO_TOKEN_SECRET: this.profile.tokenSecret,
    };
  }

  /**
   * Starts the server. A restart's port may be held meanwhile by another process (the kernel hands
   * the same range out as other processes' ephemeral ports): a start refused with EADDRINUSE is
   * retried once the port can be bound again.
   */
  async launch(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.launchOnce();
        this.port ??= Number(new URL(this.profile.serverUrl).port);
        return;
      } catch (err) {
        if (this.port === undefined || !/EADDRINUSE/.test(this.log) || attempt >= 10) throw err;
        await eventually(() => portBindable(this.port!), 60_000);
      }
    }
  }

  private async launchOnce(): Promise<void> {
    this.log = "";
    // A test's own --port (before ours) gives way to the port of the first start.
    const port = this.port === undefined ? [] : ["--port", String(this.port)];
    const proc = spawn(process.execPath, [SILO_BIN, "serve", "--port", "0", "--log-level", "warn", ...this.args, ...port], {
      env: { ...process.env, ...this.blobs.env, SILO_HOME: this.home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    const ready = new Promise<void>((resolveReady, reject) => {
      // A start costs ~2 CPU-s; on an oversubscribed machine that is a minute of wall time. The
      // limit only catches a server that never says it serves (the hook timeout is 120 s).
      const timer = setTimeout(() => reject(new Error(`silo serve did not start:\n${this.log}`)), 100_000);
      proc.stdout!.on("data", (d: Buffer) => {
        this.log += d.toString();
        if (/silo is serving at /.test(this.log)) {
          clearTimeout(timer);
          resolveReady();
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`silo serve exited with ${code}:\n${this.log}`));
      });
    });
    proc.stderr!.on("data", (d: Buffer) => (this.log += d.toString()));
    await ready;
    this.profile = JSON.parse(readFileSync(join(this.home, "config.json"), "utf8")) as Profile;
  }

  /** A client acting as this server's admin (or with other credentials/environment). */
  client(options: SiloClientOptions = {}): SiloClient {
    return new SiloClient({
      serverUrl: this.url,
      tokenId: this.profile.tokenId,
      tokenSecret: this.profile.tokenSecret,
      ...options,
    });
  }

  /** Runs the real CLI against this server. */
  cli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<CliResult> {
    return runCli(args, { ...this.env, ...opts.env }, opts.input);
  }

  /** The volume blobs this server stored (hash → identity that changes on a rewrite), wherever they live. */
  storedBlobs(): Promise<Map<string, string>> {
    return this.blobs.stored(this.home);
  }

  logs(): string {
    return this.log;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    await exited;
  }

  async restart(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.stop(signal);
    await this.launch();
  }

  async cleanup(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.home, { recursive: true, force: true });
    await this.blobs.cleanup();
  }
}

/** Resolves if `port` can be bound on 127.0.0.1 right now (and frees it again); rejects otherwise. */
function portBindable(port: number): Promise<void> {
  return new Promise((resolveFree, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolveFree()));
  });
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string | Buffer): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [SILO_BIN, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on("data", (d: Buffer) => out.push(d));
    proc.stderr.on("data", (d: Buffer) => err.push(d));
    proc.on("error", reject);
    proc.on("close", (code) =>
      resolvePromise({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    proc.stdin.end(input);
  });
}

export interface SiloServerFixture {
  server: SiloServer;
  /** An admin client of `server`. */
  silo: SiloClient;
}

/** One server for the tests of a file: started before them, stopped (home removed) after them. */
export function siloServerFixture(args: string[] = [], opts: { blobs?: BlobBackend } = {}): SiloServerFixture {
  const fx = {} as SiloServerFixture;
  beforeAll(async () => {
    fx.server = await SiloServer.start(args, opts);
    fx.silo = fx.server.client();
  });
  afterAll(async () => {
    await fx.silo?.close();
    await fx.server?.cleanup();
  });
  return fx;
}
