import type { VersionPin } from "../../protocol/volume.js";
import type { Sqlite } from "../db.js";
import { newId } from "../ids.js";
import { notFound } from "../errors.js";
import { type Clock, systemClock } from "../../lib/clock.js";

/**
 * Version pins: a reader (a mount) holds on to the version it serves, and GC keeps every
 * version from the oldest live pin on. A pin lapses `ttlMs` after its last renewal, so a reader
 * that dies never pins for ever. Callers check the version is still retained first, in the same
 * synchronous step (GC advances a volume's oldest version synchronously too).
 */
export class PinStore {
  private readonly s;

  constructor(
    db: Sqlite,
    readonly ttlMs: number,
    private readonly clock: Clock = systemClock,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS version_pins (
        volume TEXT NOT NULL, pin_id TEXT NOT NULL, version INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        PRIMARY KEY (volume, pin_id)) WITHOUT ROWID;
    `);
    this.s = {
      insert: db.prepare("INSERT INTO version_pins (volume, pin_id, version, expires_at) VALUES (?, ?, ?, ?)"),
      renew: db
        .prepare("UPDATE version_pins SET version = coalesce(?, version), expires_at = ? WHERE volume = ? AND pin_id = ? RETURNING version")
        .pluck(),
      delete: db.prepare("DELETE FROM version_pins WHERE volume = ? AND pin_id = ?"),
      oldest: db.prepare("SELECT min(version) FROM version_pins WHERE volume = ? AND expires_at > ?").pluck(),
      dropExpired: db.prepare("DELETE FROM version_pins WHERE expires_at <= ?"),
      dropVolume: db.prepare("DELETE FROM version_pins WHERE volume = ?"),
      live: db.prepare("SELECT pin_id AS pinId, version, expires_at AS expiresAt FROM version_pins WHERE volume = ? AND expires_at > ? ORDER BY version, pin_id"),
    };
  }

  create(volume: string, version: number, now = this.clock.now()): VersionPin {
    const pin = { pinId: newId("pin"), version, expiresAt: now + this.ttlMs, ttlMs: this.ttlMs };
    this.s.insert.run(volume, pin.pinId, version, pin.expiresAt);
    return pin;
  }

  /**
   * Extends a pin's life, and moves it to `version` if given. NotFound once it lapsed: GC forgets
   * a lapsed pin before it stops counting it, so a pin still here still protects its version.
   */
  renew(volume: string, pinId: string, version: number | undefined, now = this.clock.now()): VersionPin {
    const expiresAt = now + this.ttlMs;
    const pinned = this.s.renew.get(version ?? null, expiresAt, volume, pinId) as number | undefined;
    if (pinned === undefined) throw notFound(`Pin ${pinId} (it lapsed, or was deleted)`);
    return { pinId, version: pinned, expiresAt, ttlMs: this.ttlMs };
  }

  delete(volume: string, pinId: string): void {
    this.s.delete.run(volume, pinId);
  }

  /** The oldest version a live pin holds, if any. */
  oldest(volume: string, now: number): number | undefined {
    return (this.s.oldest.get(volume, now) as number | null) ?? undefined;
  }

  /** The volume's pins that have not lapsed, oldest version first (each is a live mount or reader). */
  list(volume: string, now = this.clock.now()): Array<{ pinId: string; version: number; expiresAt: number }> {
    return this.s.live.all(volume, now) as Array<{ pinId: string; version: number; expiresAt: number }>;
  }

  dropExpired(now: number): void {
    this.s.dropExpired.run(now);
  }

  dropVolume(volume: string): void {
    this.s.dropVolume.run(volume);
  }
}
