import { chmodSync, mkdirSync, unlinkSync } from "node:fs";
import type { Server } from "node:net";
import { dirname } from "node:path";

/** sun_path holds 108 bytes with its terminating NUL. */
export const MAX_SOCKET_PATH = 107;

/**
 * Listens with `server` at unix socket `path` under the server's home: its directory made 0700,
 * a stale socket there removed (one server per home, services/home-lock.ts), the socket itself
 * 0600 like every other file of the home. After the listen, errors go to `onError`.
 */
export async function listenUnixSocket(server: Server, path: string, onError: (err: Error) => void): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  removeUnixSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      server.on("error", onError);
      resolve();
    });
  });
  chmodSync(path, 0o600);
}

/** Removes the socket file at `path`, if there. */
export function removeUnixSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
