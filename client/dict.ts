import { DICT_LIMITS } from "../protocol/limits.js";
import { decode, encode } from "./dict-codec.js";
import { assertEncodable } from "./encodable.js";
import { DictLease, type LeaseGrant } from "./dict-lease.js";
import { ConflictError, InvalidError, NotFoundError, TooLargeError, errorFromCode } from "../protocol/errors.js";
import { type ObjectRecord, SiloObject } from "./object.js";
import { type EnvironmentOption, type FromNameOptions, ObjectService } from "./object-service.js";
import { OpBatcher } from "./op-batcher.js";
import type { Transport } from "./transport.js";


export interface DictInfo {
  id: string;
  name: string | null;
  environment: string;
  createdAt: Date;
  ephemeral: boolean;
}

export interface PutOptions {
  /** Write only if the key is absent (atomic); `put` then answers false when it was present. */
  skipIfExists?: boolean;
}

export interface ScanOptions {
  /** Entries fetched per request (default 1,000). */
  pageSize?: number;
}

export interface LockOptions {
  /** The lease lasts this long without renewal (default 30 s); it is renewed while held. */
  ttlMs?: number;
  /** Wait at most this long for the lock (default: until acquired; 0 = try once). ConflictError when it runs out. */
  waitMs?: number;
  signal?: AbortSignal;
}

type WireOp =
  | { op: "get" | "contains" | "pop"; key: Buffer }
  | { op: "len" }
  | { op: "put"; key: Buffer; value: Buffer; skipIfExists: boolean }
  | { op: "update"; entries: Array<[Buffer, Buffer]> };
type WireResult = { ok: unknown } | { error: { code: string; message: string } };
type ScanPage = { entries: Array<[Uint8Array, Uint8Array | undefined]>; cursor: Uint8Array | null };

/** A server long-poll lasts at most this long; a longer lock wait is several polls. */
const LOCK_POLL_MS = 30_000;

function encodeKey(key: unknown): Buffer {
  assertEncodable(key, "dict key");
  const bytes = encode(key);
  if (bytes.length > DICT_LIMITS.keyBytes) {
    throw new InvalidError(`A dict key may be at most ${DICT_LIMITS.keyBytes} bytes encoded, got ${bytes.length}`, "INVALID");
  }
  return bytes;
}

function encodeValue(value: unknown): Buffer {
  assertEncodable(value, "dict value");
  const bytes = encode(value);
  if (bytes.length > DICT_LIMITS.valueBytes) {
    throw new TooLargeError(`A dict value may be at most 100 MiB encoded, got ${bytes.length} bytes`, "TOO_LARGE");
  }
  return bytes;
}

function entriesOf<K, V>(entries: Iterable<readonly [K, V]> | Record<string, V>): Iterable<readonly [unknown, V]> {
  return Symbol.iterator in entries ? (entries as Iterable<readonly [K, V]>) : Object.entries(entries);
}

/**
 * A distributed key-value store (Modal's `Dict`). Keys and values are any msgpack-able JS value:
 * string, number, bigint, boolean, null, undefined, Date, Uint8Array, arrays, plain objects, Map, Set.
 * Two keys are the same key when they encode to the same bytes (for objects: same key order).
 * Concurrent calls are coalesced into batched requests; each call still answers on its own.
 */
export class Dict<K = unknown, V = unknown> extends SiloObject {
  private readonly batcher: OpBatcher<WireOp, WireResult>;

  constructor(transport: Transport, record: ObjectRecord) {
    super(transport, record);
    this.batcher = new OpBatcher(
      async (ops) => (await this.rpc<{ results: WireResult[] }>("POST", `/v1/dicts/${this.id}/ops`, { ops })).results,
      { maxInFlight: 4, maxOps: DICT_LIMITS.opsPerRequest, maxBytes: 1024 * 1024 },
    );
  }

  private async op(op: WireOp, bytes = 0): Promise<unknown> {
    const result = await this.batcher.run(op, bytes);
    if ("error" in result) throw errorFromCode(result.error.code, result.error.message);
    return result.ok;
  }

  /** The value for `key`, or `defaultValue` (undefined if not given) when absent. Extends the entry's TTL. */
  get(key: K): Promise<V | undefined>;
  get<D>(key: K, defaultValue: D): Promise<V | D>;
  async get<D>(key: K, defaultValue?: D): Promise<V | D | undefined> {
    const k = encodeKey(key);
    const bytes = (await this.op({ op: "get", key: k }, k.length)) as Uint8Array | null;
    return bytes === null ? defaultValue : decode<V>(bytes);
  }

  /** Sets `key` to `value`; durable when it returns. False only when `skipIfExists` found the key present. */
  async put(key: K, value: V, opts: PutOptions = {}): Promise<boolean> {
    const k = encodeKey(key);
    const v = encodeValue(value);
    return (await this.op({ op: "put", key: k, value: v, skipIfExists: opts.skipIfExists ?? false }, k.length + v.length)) as boolean;
  }

  async contains(key: K): Promise<boolean> {
    const k = encodeKey(key);
    return (await this.op({ op: "contains", key: k }, k.length)) as boolean;
  }

  /** Number of entries, at most 100,000 (counting walks the dict, as in the reference). */
  async len(): Promise<number> {
    return (await this.op({ op: "len" })) as number;
  }

  /** Writes up to 10,000 entries atomically: all or none. Takes pairs (a Map, an array) or a plain object. */
  async update(entries: Iterable<readonly [K, V]> | Record<string, V>): Promise<void> {
    const wire: Array<[Buffer, Buffer]> = [];
    let bytes = 0;
    for (const [key, value] of entriesOf(entries)) {
      if (wire.length === DICT_LIMITS.updateEntries) {
        throw new InvalidError(`update takes at most ${DICT_LIMITS.updateEntries} entries per call`, "INVALID");
      }
      const pair: [Buffer, Buffer] = [encodeKey(key), encodeValue(value)];
      bytes += pair[0].length + pair[1].length;
      wire.push(pair);
    }
    if (bytes > DICT_LIMITS.valueBytes) {
      throw new TooLargeError(`One update may carry at most 100 MiB; this one has ${bytes} bytes: split it`, "TOO_LARGE");
    }
    if (wire.length > 0) await this.op({ op: "update", entries: wire }, bytes);
  }

  /** Removes `key` and returns its value; without a default, NotFoundError when absent. */
  pop(key: K): Promise<V>;
  pop<D>(key: K, defaultValue: D): Promise<V | D>;
  async pop<D>(key: K, ...defaultValue: [D?]): Promise<V | D> {
    const k = encodeKey(key);
    const bytes = (await this.op({ op: "pop", key: k }, k.length)) as Uint8Array | null;
    if (bytes !== null) return decode<V>(bytes);
    if (defaultValue.length > 0) return defaultValue[0] as D;
    throw new NotFoundError(`Key ${describeKey(key)} not found in dict ${this.name ?? this.id}`, "NOT_FOUND");
  }

  /** Removes every entry. */
  async clear(): Promise<void> {
    await this.rpc("POST", `/v1/dicts/${this.id}/clear`, {});
  }

  async info(): Promise<DictInfo> {
    const r = await this.rpc<ObjectRecord>("GET", `/v1/objects/dict/${this.id}`);
    return { id: r.id, name: r.name, environment: r.environment, createdAt: new Date(r.createdAt), ephemeral: r.ephemeral };
  }

  private async *scan(values: boolean, opts: ScanOptions): AsyncGenerator<[Uint8Array, Uint8Array | undefined]> {
    let after: Uint8Array | undefined;
    for (;;) {
      const page = await this.rpc<ScanPage>("POST", `/v1/dicts/${this.id}/scan`, { after, values, limit: opts.pageSize ?? DICT_LIMITS.defaultScanPage });
      yield* page.entries;
      if (page.cursor === null) return;
      after = page.cursor;
    }
  }

  /** Every key, a page at a time, in encoded-key order (not insertion order). */
  async *keys(opts: ScanOptions = {}): AsyncGenerator<K> {
    for await (const [k] of this.scan(false, opts)) yield decode<K>(k);
  }

  async *values(opts: ScanOptions = {}): AsyncGenerator<V> {
    for await (const [, v] of this.scan(true, opts)) yield decode<V>(v!);
  }

  async *items(opts: ScanOptions = {}): AsyncGenerator<[K, V]> {
    for await (const [k, v] of this.scan(true, opts)) yield [decode<K>(k), decode<V>(v!)];
  }

  /**
   * Takes the lock named `key` (a separate namespace from the entries) and returns a lease that is
   * renewed while held. Only one holder at a time; another caller gets it after `release()` or
   * when the lease expires unrenewed (its process died). ConflictError if `waitMs` runs out.
   */
  async lock(key: K, opts: LockOptions = {}): Promise<DictLease<K>> {
    const k = encodeKey(key);
    const ttlMs = opts.ttlMs ?? 30_000;
    const waitMs = opts.waitMs ?? Number.POSITIVE_INFINITY;
    const deadline = Date.now() + waitMs;
    const path = `/v1/dicts/${this.id}/locks`;
    for (;;) {
      const wait = Math.max(0, Math.min(LOCK_POLL_MS, deadline - Date.now()));
      const res = await this.rpc<({ acquired: true } & LeaseGrant) | { acquired: false }>(
        "POST",
        `${path}/acquire`,
        { key: k, ttlMs, waitMs: Math.floor(wait) },
        { signal: opts.signal },
      );
      if (res.acquired) {
        return new DictLease(key, res, ttlMs, {
          renew: (leaseId, ttl) => this.rpc<LeaseGrant>("POST", `${path}/renew`, { key: k, leaseId, ttlMs: ttl }),
          release: async (leaseId) => void (await this.rpc("POST", `${path}/release`, { key: k, leaseId })),
        });
      }
      if (Date.now() >= deadline) {
        throw new ConflictError(`Lock ${describeKey(key)} is held by another holder (waited ${waitMs} ms)`, "CONFLICT");
      }
    }
  }
}

function describeKey(key: unknown): string {
  return typeof key === "string" ? `'${key}'` : typeof key === "bigint" ? `${key}n` : String(key);
}

/** `silo.dicts`: named and ephemeral dicts. */
export class DictService extends ObjectService<Dict> {
  constructor(transport: Transport) {
    super(transport, "dict");
  }

  protected wrap(record: ObjectRecord): Dict {
    return new Dict(this.transport, record);
  }

  /** The named dict; NotFoundError unless it exists or `createIfMissing`. */
  async fromName<K = unknown, V = unknown>(name: string, opts: FromNameOptions = {}): Promise<Dict<K, V>> {
    return (await this.lookup(name, opts)) as Dict<K, V>;
  }

  /** An anonymous dict deleted by `close()` / `await using`, or by the server once this process stops heart-beating. */
  async ephemeral<K = unknown, V = unknown>(opts: EnvironmentOption = {}): Promise<Dict<K, V>> {
    return (await this.createEphemeral(opts)) as Dict<K, V>;
  }
}
