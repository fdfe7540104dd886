import { Packr } from "msgpackr";

/**
 * How Dict keys and values become bytes. msgpackr with:
 * - records (self-contained, no shared structures) so plain objects and Maps stay distinct,
 * - `moreTypes` + `structuredClone` for Set, typed arrays, Error, RegExp, cycles,
 * - 64-bit integers decoded as bigint (JS numbers are packed as numbers, so both round-trip).
 * Packing is deterministic for equal input (same key order), which is what key identity needs.
 */
const codec = new Packr({
  useRecords: true,
  mapsAsObjects: false,
  moreTypes: true,
  structuredClone: true,
  int64AsType: "bigint",
});

/** Encodes a key or value. msgpackr never reuses the bytes it returned, so they may be kept. */
export function encode(value: unknown): Buffer {
  return codec.pack(value);
}

export function decode<T>(bytes: Uint8Array): T {
  return codec.unpack(bytes) as T;
}
