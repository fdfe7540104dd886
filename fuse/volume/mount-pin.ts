import { NotFoundError, VersionGoneError } from "../../protocol/errors.js";
import type { VersionPin } from "../../protocol/volume.js";
import type { VolumeRemote } from "./remote.js";

/** How soon a failed renewal is tried again, as a fraction of the pin's TTL. */
const RETRY_FRACTION = 10;

/**
 * Holds the server's pin on the version a mount serves, so GC keeps the blocks the mount may
 * still read. Renewed every third of its TTL in the background and moved along when the mount's
 * version changes (`sync`). Failures are logged and retried, never thrown: FUSE requests never
 * wait for it. A pin that lapsed meanwhile (the server was away too long) is created anew.
 */
export class MountPin {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly remote: VolumeRemote,
    private pin: VersionPin,
    /** The version the mount serves now. */
    private readonly served: () => number,
    private readonly log: (msg: string) => void,
  ) {
    this.schedule(pin.ttlMs / 3);
  }

  /** Moves the pin now if the mount's version changed (after a commit or reload). */
  sync(): void {
    if (this.served() !== this.pin.version) void this.renew();
  }

  /** Stops renewing and deletes the pin (at unmount); a failure only leaves it to lapse. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.renewing;
    await this.remote.unpin(this.pin.pinId).catch((err: Error) => this.log(`deleting the version pin failed (it lapses on its own): ${err.message}`));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.renew(), ms);
    this.timer.unref();
  }

  private renew(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.renewing ??= this.renewNow().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async renewNow(): Promise<void> {
    const version = this.served();
    try {
      this.pin = await this.remote.renewPin(this.pin.pinId, version === this.pin.version ? undefined : version).catch((err: Error) => {
        if (!(err instanceof NotFoundError) || err instanceof VersionGoneError) throw err;
        this.log(`the version pin lapsed; pinning version ${version} again`);
        return this.remote.pinVersion(version);
      });
      // The version may have moved again while we asked.
      this.schedule(this.served() === this.pin.version ? this.pin.ttlMs / 3 : 0);
    } catch (err) {
      const gone = err instanceof VersionGoneError ? " (files changed since may fail to read until the next reload)" : "";
      this.log(`renewing the pin on version ${version} failed, will retry${gone}: ${(err as Error).message}`);
      this.schedule(this.pin.ttlMs / RETRY_FRACTION);
    }
  }
}
