import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { Sqlite } from "../db.js";

import type { SecretValues } from "../../protocol/objects.js";

export type { SecretValues };

/**
 * Secret values, encrypted at rest with AES-256-GCM under the server's master key. The object
 * id is the additional authenticated data, so a ciphertext cannot be moved to another secret.
 * Key names are stored in clear (listing shows them); values never are.
 */
export class SecretStore {
  constructor(
    private readonly db: Sqlite,
    private readonly key: Buffer,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS secret_values (
      object_id TEXT PRIMARY KEY, keys TEXT NOT NULL, iv BLOB NOT NULL, ciphertext BLOB NOT NULL, tag BLOB NOT NULL,
      updated_at INTEGER NOT NULL)`);
  }

  put(objectId: string, values: SecretValues): void {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(objectId));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(values), "utf8"), cipher.final()]);
    this.db
      .prepare(
        `INSERT INTO secret_values (object_id, keys, iv, ciphertext, tag, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (object_id) DO UPDATE SET keys = excluded.keys, iv = excluded.iv, ciphertext = excluded.ciphertext,
           tag = excluded.tag, updated_at = excluded.updated_at`,
      )
      .run(objectId, JSON.stringify(Object.keys(values).sort()), iv, ciphertext, cipher.getAuthTag(), Date.now());
  }

  get(objectId: string): SecretValues {
    const row = this.db.prepare("SELECT iv, ciphertext, tag FROM secret_values WHERE object_id = ?").get(objectId) as
      | { iv: Buffer; ciphertext: Buffer; tag: Buffer }
      | undefined;
    if (!row) return {};
    const decipher = createDecipheriv("aes-256-gcm", this.key, row.iv);
    decipher.setAAD(Buffer.from(objectId));
    decipher.setAuthTag(row.tag);
    return JSON.parse(Buffer.concat([decipher.update(row.ciphertext), decipher.final()]).toString("utf8")) as SecretValues;
  }

  keys(objectId: string): string[] {
    const row = this.db.prepare("SELECT keys FROM secret_values WHERE object_id = ?").get(objectId) as { keys: string } | undefined;
    return row ? (JSON.parse(row.keys) as string[]) : [];
  }

  delete(objectId: string): void {
    this.db.prepare("DELETE FROM secret_values WHERE object_id = ?").run(objectId);
  }
}
