import { NotFoundError, VersionGoneError } from "../../protocol/errors.js";
import type { VersionPin } from "../../protocol/volume.js";
import type { VolumeRemote } from "./remote.js";

/** How soon a failed renewal is tried again, as a fraction of the pin's TTL. */
const RETRY_FRACTION = 10;

/** What the pin follows (MountedVolume). */
export interface PinnedMount {
  /** The version the mount serves. */
  readonly viewVersion: number;
  /** The oldest version the mount still needs: the served one, or older while files pending or open there came from it. */
  heldVersion(): number;
}

/**
 * Holds the server's pin on the oldest version a mount still needs (MountedVolume.heldVersion:
 * the version it serves, or an older one while a file pending or open there refers to blocks
 * only that one names), so GC keeps every block the mount may still read or commit. Renewed
 * every third of its TTL in the background and moved along when that version changes (`sync`).
 * Failures are logged and retried, never thrown: FUSE requests never wait for it. A pin that
 * lapsed meanwhile (the server was away too long) is created anew.
 */
export class MountPin {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = false;
  /** Versions below this one were gone when asked for: not asked for again. */
  private floor = 0;

  constructor(
    private readonly remote: VolumeRemote,
    private pin: VersionPin,
    private readonly mount: PinnedMount,
    private readonly log: (msg: string) => void,
  ) {
    this.schedule(pin.ttlMs / 3);
  }

  /** The version the server's pin holds now (below the served one while files pending or open here came from an older one). */
  get version(): number {
    return this.pin.version;
  }

  /** Moves the pin now if the version the mount needs changed (after a commit, a reload, a journal replay). */
  sync(): Promise<void> {
    return this.target() !== this.pin.version ? this.renew() : Promise.resolve();
  }

  /** Stops renewing and deletes the pin (at unmount); a failure only leaves it to lapse. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.renewing;
    await this.remote.unpin(this.pin.pinId).catch((err: Error) => this.log(`deleting the version pin failed (it lapses on its own): ${err.message}`));
  }

  private target(): number {
    return Math.max(this.mount.heldVersion(), this.floor);
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
    const version = this.target();
    try {
      this.pin = await this.moveTo(version).catch((err: Error) => {
        // Older than the served version and dropped already (a replayed journal's, or the server
        // was out of reach past the TTL): the served one at least.
        const served = this.mount.viewVersion;
        if (!(err instanceof VersionGoneError) || version >= served) throw err;
        this.log(`version ${version}, which files pending or open here came from, is no longer kept (blocks only it named may be gone); pinning version ${served}`);
        this.floor = served;
        return this.moveTo(served);
      });
      // The version may have moved again while we asked.
      this.schedule(this.target() === this.pin.version ? this.pin.ttlMs / 3 : 0);
    } catch (err) {
      const gone = err instanceof VersionGoneError ? " (files changed since may fail to read until the next reload)" : "";
      this.log(`renewing the pin on version ${version} failed, will retry${gone}: ${(err as Error).message}`);
      this.schedule(this.pin.ttlMs / RETRY_FRACTION);
    }
  }

  /** Renews the pin, moved to `version`; one that lapsed meanwhile is created anew. */
  private moveTo(version: number): Promise<VersionPin> {
    return this.remote.renewPin(this.pin.pinId, version === this.pin.version ? undefined : version).catch((err: Error) => {
      if (!(err instanceof NotFoundError) || err instanceof VersionGoneError) throw err;
      this.log(`the version pin lapsed; pinning version ${version} again`);
      return this.remote.pinVersion(version);
    });
  }
}
