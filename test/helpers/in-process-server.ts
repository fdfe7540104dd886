import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SiloClient, type SiloClientOptions } from "../../client/index.js";
import { TestClock } from "../../lib/clock.js";
import { type SiloApp, buildApp } from "../../services/app.js";
import { type ServerOptions, defaultServerOptions } from "../../services/options.js";
import { type Profile, writeLocalProfile } from "../../services/profile.js";
import { afterAll, beforeAll } from "vitest";
import { type BlobBackend, type TestBlobs, testBlobs } from "./blob-backend.js";
import { type CliResult, runCli } from "./silo-server.js";

/**
 * The real server app in this process, listening on a free loopback port, with a TestClock for
 * every TTL: tests move time with `clock.advance(ms)` instead of sleeping. Clients talk to it
 * over real HTTP. `restart()` closes the app and builds it again on the same home and clock.
 */
export class InProcessServer {
  built: SiloApp | undefined;
  profile!: Profile;

  private constructor(
    readonly home: string,
    readonly options: ServerOptions,
    readonly clock: TestClock,
    /** Where its volume blocks live (the run's blob backend, as for SiloServer). */
    readonly blobs: TestBlobs,
  ) {}

  /**
   * The clock starts at the real time: clients compare the server's absolute expiry times with theirs.
   * With SILO_TEST_BLOBS=s3 volume blocks go to a fresh prefix of the test bucket, unless `options.blobs` is set.
   */
  static async start(options: Partial<ServerOptions> = {}, opts: { clock?: TestClock; blobs?: BlobBackend } = {}): Promise<InProcessServer> {
    const blobs = await testBlobs(options.blobs ? ["--blobs"] : [], opts.blobs);
    const flag = (name: string) => {
      const i = blobs.args.indexOf(name);
      return i >= 0 ? blobs.args[i + 1] : undefined;
    };
    // The S3 client reads its credentials from the environment, as `silo serve` would.
    Object.assign(process.env, blobs.env);
    const home = mkdtempSync(join(tmpdir(), "silo-inproc-"));
    const blobOptions = { ...(flag("--blobs") && { blobs: flag("--blobs") }), ...(flag("--s3-endpoint") && { s3Endpoint: flag("--s3-endpoint") }) };
    const all = { ...defaultServerOptions(), logLevel: "warn", ...blobOptions, ...options, home, port: options.port ?? 0 };
    const server = new InProcessServer(home, all, opts.clock ?? new TestClock(Date.now()), blobs);
    try {
      await server.launch();
    } catch (err) {
      rmSync(home, { recursive: true, force: true });
      await blobs.cleanup();
      throw err;
    }
    return server;
  }

  /** Runs the real CLI against this server. */
  cli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}): Promise<CliResult> {
    return runCli(args, { ...this.env, ...this.blobs.env, ...opts.env }, opts.input);
  }

  /** The volume blobs this server stored (hash → identity that changes on a rewrite), wherever they live. */
  storedBlobs(): Promise<Map<string, string>> {
    return this.blobs.stored(this.home);
  }

  get url(): string {
    return this.profile.serverUrl;
  }

  /** Builds the app on the home and listens (on `options.port`, or a free port). */
  async launch(): Promise<void> {
    this.built = await buildApp(this.options, { clock: this.clock });
    await this.built.app.listen({ host: "127.0.0.1", port: this.options.port });
    const addr = this.built.app.server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    this.profile = writeLocalProfile(this.home, this.built.auth, `http://127.0.0.1:${port}`);
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
   * Resolves once exactly `n` callers of `kind` ("dict", "queue") wait in a blocking call on the
   * server (`silo_long_polls_open`): the server's own count of waiters, so unlike a count of
   * timers no other timer's coming or going can be mistaken for a waiter arriving or leaving.
   */
  async longPollsOpen(kind: string, n: number): Promise<void> {
    const open = async () => {
      const gauge = this.built!.metrics.getSingleMetric("silo_long_polls_open");
      const values = gauge ? (await gauge.get()).values : [];
      return values.find((v) => v.labels.kind === kind)?.value ?? 0;
    };
    while ((await open()) !== n) await new Promise((r) => setImmediate(r));
  }

  /** Resolves once `n` more timers than `before` are pending on the clock (a waiter has started waiting). */
  async timersPending(before: number, n = 1): Promise<void> {
    while (this.clock.pending < before + n) await new Promise((r) => setTimeout(r, 5));
  }

  /** A client acting as this server's admin. */
  client(options: SiloClientOptions = {}): SiloClient {
    return new SiloClient({ serverUrl: this.url, tokenId: this.profile.tokenId, tokenSecret: this.profile.tokenSecret, ...options });
  }

  /** A clean shutdown (every kind's close hooks run); `launch()` starts it again on the same home. */
  async stop(): Promise<void> {
    const built = this.built;
    this.built = undefined;
    await built?.shutdown();
  }

  /** A clean shutdown, then a fresh app on the same home; the URL changes unless `options.port` was given. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.home, { recursive: true, force: true });
    await this.blobs.cleanup();
  }
}

export interface InProcessFixture {
  server: InProcessServer;
  /** An admin client of `server` (replace it after a restart: the port changes). */
  silo: SiloClient;
}

/** One in-process server for the tests of a file. */
export function inProcessFixture(options: Partial<ServerOptions> = {}): InProcessFixture {
  const fx = {} as InProcessFixture;
  beforeAll(async () => {
    fx.server = await InProcessServer.start(options);
    fx.silo = fx.server.client();
  });
  afterAll(async () => {
    await fx.silo?.close();
    await fx.server?.cleanup();
  });
  return fx;
}
