import { join } from "node:path";
import { buildApp } from "./app.js";
import { isNoSpace } from "./disk-full.js";
import { lockHome } from "./home-lock.js";
import { listenMetrics, parseListenAddress } from "./metrics/listener.js";
import type { ServerOptions } from "./options.js";
import { profilePath, writeLocalProfile } from "./profile.js";

/** `silo serve`: builds the app, listens, writes the local client profile, and shuts down cleanly on a signal. */
export async function startServer(options: ServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  // Everything the server creates (SQLite and LMDB files, blocks, keys, the profile) is its user's
  // alone: files 0600, directories 0700.
  process.umask(0o077);
  // A bad address fails before anything is opened.
  if (options.metricsListen) parseListenAddress(options.metricsListen);
  const unlock = lockHome(join(options.home, "data"));
  let built: Awaited<ReturnType<typeof buildApp>>;
  try {
    built = await buildApp(options);
  } catch (err) {
    unlock();
    throw err;
  }
  const { app, auth, metrics, diskFull } = built;
  let metricsListener: Awaited<ReturnType<typeof listenMetrics>> | undefined;
  const shutdown = async () => {
    await metricsListener?.close();
    await built.shutdown();
  };
  try {
    await app.listen({ host: options.host, port: options.port });
    if (options.metricsListen) metricsListener = await listenMetrics(metrics, options.metricsListen);
  } catch (err) {
    await shutdown().finally(unlock);
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : options.port;
  const clientHost = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
  const url = `http://${clientHost.includes(":") ? `[${clientHost}]` : clientHost}:${port}`;
  try {
    writeLocalProfile(options.home, auth, url);
  } catch (err) {
    // On a full disk the server still serves (deletes work); the profile from an earlier start stays.
    if (!isNoSpace(err, join(options.home, "data"))) throw err;
  }
  if (diskFull) {
    process.stdout.write(
      `silo: the disk of ${options.home} is full: reads, deletes and clears work; writes that add data answer 507 NO_SPACE until space is freed\n`,
    );
  }
  // One plain line for people and scripts (tests wait for it), whatever the log level.
  // Before the serving line, which tests and scripts wait for.
  if (metricsListener) process.stdout.write(`silo metrics (no token) at ${metricsListener.url}\n`);
  process.stdout.write(`silo is serving at ${url} (home ${options.home}, client profile ${profilePath(options.home)})\n`);


  let closing: Promise<void> | undefined;
  const close = () => (closing ??= shutdown().finally(unlock));
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, "shutting down");
      close().then(
        () => process.exit(0),
        (err) => {
          app.log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
  return { url, close };
}
