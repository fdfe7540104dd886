/**
 * Wire types every kind shares: object records, tokens, secret values. The server's stores and
 * the client library both use these, so a field is stated once.
 */

/** A named (or ephemeral) object of some kind, confined to one workspace and environment. */
export interface ObjectRecord {
  id: string;
  kind: string;
  name: string | null;
  workspaceId: string;
  environment: string;
  /** Epoch ms. */
  createdAt: number;
  ephemeral: boolean;
  /** Kind-specific settings fixed at creation (e.g. a volume's inode limit). */
  options: Record<string, unknown>;
  /** Ephemeral objects, in answers to the client: how often to send a heartbeat. */
  heartbeatIntervalMs?: number;
}

/** A token as listed: never its secret. */
export interface TokenInfo {
  id: string;
  workspaceId: string;
  label: string;
  admin: boolean;
  /** Epoch ms. */
  createdAt: number;
  revokedAt: number | null;
}

/** A newly issued token: the only time its secret is shown. */
export interface IssuedToken {
  tokenId: string;
  tokenSecret: string;
}

/** A secret's values: environment-variable names to values. */
export type SecretValues = Record<string, string>;
