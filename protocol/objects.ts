/**
 * Wire types every kind shares (object records, tokens, secret values) and the shared
 * named-object routes' schemas (`/v1/objects/:kind/...`), stated once with TypeBox: the server
 * validates against these schemas and derives its handlers' types from them.
 */
import { type Static, Type } from "typebox";
import { IdSchema, NameSchema } from "./name-schemas.js";

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

/** A kind's name in the URL (dict, queue, volume, secret, …): unknown kinds are NotFound. */
const Kind = Type.String({ pattern: "^[a-z][a-z0-9-]{0,31}$" });
const Options = Type.Record(Type.String(), Type.Unknown(), { description: "Kind-specific options (e.g. a volume's inode limit)" });

export const KindParams = Type.Object({ kind: Kind });
export const KindIdParams = Type.Object({ kind: Kind, id: IdSchema });
export const KindNameParams = Type.Object({ kind: Kind, name: NameSchema });

export const CreateObjectBody = Type.Object({ name: NameSchema, allowExisting: Type.Optional(Type.Boolean()), options: Type.Optional(Options) });
export const LookupObjectBody = Type.Object({ name: NameSchema, createIfMissing: Type.Optional(Type.Boolean()), options: Type.Optional(Options) });
export const ListObjectsQuery = Type.Object({
  maxObjects: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  createdBefore: Type.Optional(Type.Integer({ minimum: 0, maximum: 8.64e15 })),
});
export const RenameObjectBody = Type.Object({ name: NameSchema, newName: NameSchema });
export const DeleteByNameQuery = Type.Object({ allowMissing: Type.Optional(Type.Boolean()) });
export const EphemeralObjectBody = Type.Object({ options: Type.Optional(Options) });

export type CreateObjectRequest = Static<typeof CreateObjectBody>;
export type LookupObjectRequest = Static<typeof LookupObjectBody>;
export type ListObjectsRequest = Static<typeof ListObjectsQuery>;
export type RenameObjectRequest = Static<typeof RenameObjectBody>;
