import { join } from "node:path";
import type { BlobStore } from "./blob-store.js";
import { LocalBlobStore } from "./local.js";

export type { BlobInfo, BlobStore, ByteRange } from "./blob-store.js";
export { HASH_RE } from "./blob-store.js";
export { verifyingStream } from "./verify.js";

/** The blob store the server uses; `local` keeps blobs under `<dataDir>/blobs`. An `s3` backend would be one more case. */
export function openBlobStore(backend: "local", dataDir: string): BlobStore {
  switch (backend) {
    case "local":
      return new LocalBlobStore(join(dataDir, "blobs"));
  }
}
