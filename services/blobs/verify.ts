import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { siloError, invalid } from "../errors.js";

/**
 * The bytes of `body`, hashed as they flow; the stream fails at the end if the SHA-256 is not
 * `hash`, or early once more than `maxBytes` went by, so a blob store keeps nothing.
 */
export function verifyingStream(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, hash: string, maxBytes: number): Readable {
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
  return Readable.from(verified(), { objectMode: false });
}
