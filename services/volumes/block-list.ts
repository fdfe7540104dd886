import type { BlockRef } from "../../protocol/volume.js";

/**
 * How a file's block list is stored: one 32-byte record per item. A hash is its raw 32 bytes; a
 * hole of n blocks is 24 zero bytes and n as a big-endian 64-bit number. So a 1 TiB sparse file
 * is one record, and a stored list reads back as exactly the list that was committed.
 * A real SHA-256 starting with 24 zero bytes does not occur (2^-192); commits refuse one.
 */
const RECORD = 32;
const HOLE_PREFIX_BYTES = 24;
/** Hex prefix of a hash that would be read back as a hole. */
export const HOLE_LOOKALIKE = "0".repeat(HOLE_PREFIX_BYTES * 2);

export function packBlocks(blocks: readonly BlockRef[]): Buffer {
  const out = Buffer.alloc(blocks.length * RECORD);
  blocks.forEach((b, i) => {
    if (typeof b === "string") out.write(b, i * RECORD, RECORD, "hex");
    else out.writeBigUInt64BE(BigInt(b), i * RECORD + HOLE_PREFIX_BYTES);
  });
  return out;
}

function isHole(packed: Buffer, at: number): boolean {
  for (let j = at; j < at + HOLE_PREFIX_BYTES; j++) if (packed[j] !== 0) return false;
  return true;
}

export function unpackBlocks(packed: Buffer | null): BlockRef[] {
  const out: BlockRef[] = [];
  if (!packed) return out;
  for (let at = 0; at < packed.length; at += RECORD) {
    out.push(isHole(packed, at) ? Number(packed.readBigUInt64BE(at + HOLE_PREFIX_BYTES)) : packed.toString("hex", at, at + RECORD));
  }
  return out;
}

/** The stored blocks a packed list references (holes reference none), one per occurrence. */
export function packedHashes(packed: Buffer | null): string[] {
  const out: string[] = [];
  if (!packed) return out;
  for (let at = 0; at < packed.length; at += RECORD) if (!isHole(packed, at)) out.push(packed.toString("hex", at, at + RECORD));
  return out;
}
