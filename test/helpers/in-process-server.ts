import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SiloClient, type SiloClientOptions } from "../../client/index.js";
import { TestClock } from "../../lib/clock.js";
import { type SiloApp, buildApp } from "../../services/app.js";
import { type ServerOptions, defaultServerOptions } from "../../services/options.js";
import { type Profile, writeLocalProfile } from "../../services/profile.js";
import { afterAll, beforeAll } from "vitest";

/**
 * The real server app in this process, listening on a free loopback port, with a TestClock for
 * every TTL: tests move time with `clock.advance(ms)` instead of sleeping. Clients talk to it
 * over real HTTP. `restart()` closes the app and builds it again on the same home and clock.
 */
export class InProcessServer {
  built!: SiloApp;
  profile!: Profile;

  private constructor(
    readonly home: string,
    readonly options: ServerOptions,
    readonly clock: TestClock,
  ) {}

  /** The clock starts at the real time: clients compare the server's absolute expiry times with theirs. */
  static async start(options: Partial<ServerOptions> = {}, clock = new TestClock(Date.now())): Promise<InProcessServer> {
    const home = mkdtempSync(join(tmpdir(), "silo-inproc-"));
    const server = new InProcessServer(home, { ...defaultServerOptions(), logLevel: "warn", ...options, home, port: 0 }, clock);
    try {
      await server.launch();
    } catch (err) {
      rmSync(home, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  get url(): string {
    return this.profile.serverUrl;
  }

  private async launch(): Promise<void> {
    this.built = await buildApp(this.options, { clock: this.clock });
    await this.built.app.listen({ host: "127.0.0.1", port: 0 });
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

  /** Resolves once `n` more timers than `before` are pending on the clock (a waiter has started waiting). */
  async timersPending(before: number, n = 1): Promise<void> {
    while (this.clock.pending < before + n) await new Promise((r) => setTimeout(r, 5));
  }

  /** A client acting as this server's admin. */
  client(options: SiloClientOptions = {}): SiloClient {
    return new SiloClient({ serverUrl: this.url, tokenId: this.profile.tokenId, tokenSecret: this.profile.tokenSecret, ...options });
  }

  /** A clean shutdown (every kind's close hooks run), then a fresh app on the same home; the URL changes. */
  async restart(): Promise<void> {
    await this.built.shutdown();
    await this.launch();
  }

  async cleanup(): Promise<void> {
    await this.built?.shutdown();
    rmSync(this.home, { recursive: true, force: true });
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
