import type { Sqlite } from "../db.js";
import { siloError } from "../errors.js";

/**
 * Remembers where this home's volume blocks live (`local` or `s3://bucket/prefix`) and refuses
 * to start with another place: the block index would point at blobs that are not there.
 */
export function pinBlobLocation(db: Sqlite, blobs: string): void {
  db.exec("CREATE TABLE IF NOT EXISTS blob_location (id INTEGER PRIMARY KEY CHECK (id = 1), location TEXT NOT NULL)");
  const location = blobs.replace(/\/+$/, "");
  db.prepare("INSERT OR IGNORE INTO blob_location (id, location) VALUES (1, ?)").run(location);
  const pinned = db.prepare("SELECT location FROM blob_location").pluck().get() as string;
  if (pinned !== location) {
    throw siloError("INVALID", `This SILO_HOME keeps its volume blocks in '${pinned}', not '${location}': start silo serve with --blobs ${pinned}`);
  }
}
