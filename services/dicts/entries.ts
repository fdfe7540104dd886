import { type Clock, systemClock } from "../../lib/clock.js";
import { siloError, invalid } from "../errors.js";
import type { GroupCommit } from "../kv-group-commit.js";
import {
  type DictDbs,
  EMPTY,
  type EntryMeta,
  decodeMeta,
  dictRange,
  encodeMeta,
  expiryKey,
  fullKey,
  userKey,
} from "./layout.js";
import { DICT_LIMITS } from "../../protocol/limits.js";

export interface ScanPage {
  entries: Array<[Buffer, Buffer | undefined]>;
  /** Pass back as `after` for the next page; null when the scan is done. */
  cursor: Buffer | null;
  /** With `expiry`: when each entry expires unless read or written before (ms since the epoch), parallel to `entries`. */
  expiresAt?: number[];
}

/** Rows deleted per transaction when clearing or purging, so one huge dict never blocks the loop for long. */
const DELETE_CHUNK = 5_000;

/**
 * A dict's entries on LMDB, with expiry after `ttlMs` without a read or write.
 *
 * Reads never write synchronously: a read that finds an entry last touched more than
 * `granularityMs` ago notes the touch in memory, and the notes are written in one batch a moment
 * later. Visibility always takes pending touches into account, so an entry that was just read
 * never disappears while its touch waits to be written.
 *
 * Write methods (`put`, `pop`, `update`) must run inside a write transaction (`GroupCommit.run`).
 */
export class DictEntries {
  /** id+key (latin1) → time of a read not yet written to `dict-meta`. */
  private readonly touches = new Map<string, number>();
  private readonly granularityMs: number;

  constructor(
    private readonly dbs: DictDbs,
    private readonly commits: GroupCommit,
    private readonly ttlMs: number,
    /** Time for entry TTLs; the batch runner reads it too, so one batch sees one instant. */
    readonly clock: Clock = systemClock,
  ) {
    // A 7-day TTL is extended at most once a minute per entry; short test TTLs stay precise.
    this.granularityMs = Math.min(60_000, Math.floor(ttlMs / 100));
  }

  private lastAccess(full: Buffer, meta: EntryMeta): number {
    const pending = this.touches.get(full.toString("latin1"));
    return pending !== undefined && pending > meta.lastAccess ? pending : meta.lastAccess;
  }

  /** The entry's meta if it exists and has not expired. */
  private live(full: Buffer, now: number): EntryMeta | undefined {
    const raw = this.dbs.meta.get(full);
    if (!raw) return undefined;
    const meta = decodeMeta(raw);
    return this.lastAccess(full, meta) + this.ttlMs > now ? meta : undefined;
  }

  private touch(full: Buffer, meta: EntryMeta, now: number): void {
    if (now - this.lastAccess(full, meta) >= this.granularityMs) this.touches.set(full.toString("latin1"), now);
  }

  get(dictId: string, key: Buffer, now = this.clock.now()): Buffer | undefined {
    checkKey(key);
    const full = fullKey(dictId, key);
    const meta = this.live(full, now);
    if (!meta) return undefined;
    const value = this.dbs.entries.get(full);
    if (value !== undefined) this.touch(full, meta, now);
    return value;
  }

  contains(dictId: string, key: Buffer, now = this.clock.now()): boolean {
    return this.get(dictId, key, now) !== undefined;
  }

  /** Live entries, counted up to the cap (this walks the dict, like the reference's). */
  len(dictId: string, now = this.clock.now()): number {
    let n = 0;
    for (const { key, value } of this.dbs.meta.getRange(dictRange(dictId))) {
      if (this.lastAccess(key, decodeMeta(value)) + this.ttlMs > now && ++n >= DICT_LIMITS.lenCap) break;
    }
    return n;
  }

  /** One page of live entries in key-byte order, after `after` (exclusive). Scans do not extend TTLs. */
  scan(dictId: string, opts: { after?: Buffer; limit: number; values: boolean; expiry?: boolean }, now = this.clock.now()): ScanPage {
    const range = dictRange(dictId);
    // The smallest key greater than `after` is `after` followed by a zero byte.
    const start = opts.after ? fullKey(dictId, Buffer.concat([opts.after, Buffer.of(0)])) : range.start;
    const entries: ScanPage["entries"] = [];
    const expiresAt: number[] = [];
    const page = (cursor: Buffer | null): ScanPage => (opts.expiry ? { entries, cursor, expiresAt } : { entries, cursor });
    let bytes = 0;
    let last: Buffer | undefined;
    for (const { key, value } of this.dbs.meta.getRange({ start, end: range.end })) {
      if (entries.length >= opts.limit || bytes >= DICT_LIMITS.scanPageBytes) return page(last!);
      last = userKey(dictId, key);
      const expires = this.lastAccess(key, decodeMeta(value)) + this.ttlMs;
      if (expires <= now) continue;
      const entryValue = opts.values ? this.dbs.entries.get(key) : undefined;
      if (opts.values && entryValue === undefined) continue;
      entries.push([last, entryValue]);
      expiresAt.push(expires);
      bytes += last.length + (entryValue?.length ?? 0);
    }
    return page(null);
  }

  /** Writes an entry (inside a transaction); false if `skipIfExists` and a live entry exists. */
  put(dictId: string, key: Buffer, value: Buffer, skipIfExists: boolean, now = this.clock.now()): boolean {
    checkKey(key);
    checkValue(value);
    return this.write(fullKey(dictId, key), value, skipIfExists, now);
  }

  private write(full: Buffer, value: Buffer, skipIfExists: boolean, now: number): boolean {
    const raw = this.dbs.meta.get(full);
    if (raw) {
      const meta = decodeMeta(raw);
      if (skipIfExists && this.lastAccess(full, meta) + this.ttlMs > now) return false;
      // An existing key's new access time is noted like a read's, so a hot key's write touches
      // one page, not two; its expiry-index row stays until the sweeper re-files it.
      this.touch(full, meta, now);
    } else {
      this.dbs.expiry.put(expiryKey(now, full), EMPTY);
      this.dbs.meta.put(full, encodeMeta({ lastAccess: now, indexedAt: now }));
    }
    this.dbs.entries.put(full, value);
    return true;
  }

  /** Writes all entries or none (inside a transaction): everything is checked before the first write. */
  update(dictId: string, entries: Array<[Buffer, Buffer]>, now = this.clock.now()): void {
    if (entries.length > DICT_LIMITS.updateEntries) {
      throw invalid(`update takes at most ${DICT_LIMITS.updateEntries} entries per call, got ${entries.length}`);
    }
    for (const [key, value] of entries) {
      checkKey(key);
      checkValue(value);
    }
    for (const [key, value] of entries) this.write(fullKey(dictId, key), value, false, now);
  }

  /** Removes an entry and returns its value (inside a transaction); undefined if missing or expired. */
  pop(dictId: string, key: Buffer, now = this.clock.now()): Buffer | undefined {
    checkKey(key);
    const full = fullKey(dictId, key);
    const raw = this.dbs.meta.get(full);
    if (!raw) return undefined;
    const meta = decodeMeta(raw);
    const value = this.lastAccess(full, meta) + this.ttlMs > now ? this.dbs.entries.get(full) : undefined;
    this.remove(full, meta);
    return value;
  }

  private remove(full: Buffer, meta: EntryMeta): void {
    this.dbs.entries.remove(full);
    this.dbs.meta.remove(full);
    this.dbs.expiry.remove(expiryKey(meta.indexedAt, full));
  }

  /** Deletes every entry of a dict, a chunk per transaction (also used to purge a deleted dict). */
  async clear(dictId: string): Promise<void> {
    const range = dictRange(dictId);
    for (;;) {
      const n = await this.commits.run(() => {
        // Collected first: the rows are removed from under the range being read.
        const rows = [...this.dbs.meta.getRange({ ...range, limit: DELETE_CHUNK })];
        for (const { key, value } of rows) this.remove(key, decodeMeta(value));
        return rows.length;
      }, { freesSpace: true });
      if (n === 0) break;
    }
  }

  /** Writes pending read-touches in one transaction. */
  async flushTouches(): Promise<void> {
    if (this.touches.size === 0) return;
    const batch = [...this.touches];
    await this.commits.run(() => {
      for (const [k, at] of batch) {
        const full = Buffer.from(k, "latin1");
        const raw = this.dbs.meta.get(full);
        if (!raw) continue;
        const meta = decodeMeta(raw);
        if (at > meta.lastAccess) this.dbs.meta.put(full, encodeMeta({ lastAccess: at, indexedAt: meta.indexedAt }));
      }
    });
    // Keep notes that a newer read replaced meanwhile.
    for (const [k, at] of batch) if (this.touches.get(k) === at) this.touches.delete(k);
  }

  /**
   * Deletes expired entries: walks the expiry index up to `now - ttl`. A row whose entry was read or
   * written since is re-filed under its last access; a row whose entry is gone is dropped.
   * Returns the number of entries deleted.
   */
  async sweep(now = this.clock.now()): Promise<number> {
    await this.flushTouches();
    const end = expiryKey(now - this.ttlMs, EMPTY);
    let deleted = 0;
    for (;;) {
      const { rows, expired } = await this.commits.run(() => {
        const keys = [...this.dbs.expiry.getKeys({ end, limit: DELETE_CHUNK })];
        let expired = 0;
        for (const key of keys) {
          const filedAt = key.readDoubleBE(0);
          const full = key.subarray(8);
          const raw = this.dbs.meta.get(full);
          const meta = raw && decodeMeta(raw);
          this.dbs.expiry.remove(key);
          if (!meta || meta.indexedAt !== filedAt) continue;
          const last = this.lastAccess(full, meta);
          if (last + this.ttlMs <= now) {
            this.dbs.entries.remove(full);
            this.dbs.meta.remove(full);
            expired++;
          } else {
            this.dbs.expiry.put(expiryKey(last, full), EMPTY);
            this.dbs.meta.put(full, encodeMeta({ lastAccess: last, indexedAt: last }));
          }
        }
        return { rows: keys.length, expired };
      }, { freesSpace: true });
      deleted += expired;
      if (rows < DELETE_CHUNK) break;
    }
    return deleted;
  }
}

function checkKey(key: Buffer): void {
  if (key.length === 0) throw invalid("A dict key must not be empty");
  if (key.length > DICT_LIMITS.keyBytes) {
    throw invalid(`A dict key may be at most ${DICT_LIMITS.keyBytes} bytes encoded, got ${key.length}`);
  }
}

function checkValue(value: Buffer): void {
  if (value.length > DICT_LIMITS.valueBytes) {
    throw siloError("TOO_LARGE", `A dict value may be at most 100 MiB encoded, got ${value.length} bytes`);
  }
}
