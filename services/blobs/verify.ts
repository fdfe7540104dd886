import { createHash } from "node:crypto";
import { siloError, invalid } from "../errors.js";

/**
 * The bytes of `body`, hashed as they flow; the iteration fails at the end if the SHA-256 is not
 * `hash`, or early once more than `maxBytes` went by, so a blob store keeps nothing. A plain
 * async iterable, not a Readable: another stream layer cost a few hops per 64 KiB chunk.
 */
export function verifyingStream(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, hash: string, maxBytes: number): AsyncIterable<Uint8Array> {
  async function* verified() {
    const sha = createHash("sha256");
    let bytes = 0;
    for await (const chunk of body) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw siloError("TOO_LARGE", `Block is larger than ${maxBytes} bytes`);
      sha.update(chunk);
      yield chunk;
    }
    const actual = sha.digest("hex");
    if (actual !== hash) throw invalid(`Block content does not match its hash ${hash} (got ${actual})`);
  }
  return verified();
}
