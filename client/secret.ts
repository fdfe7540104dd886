import { InvalidError, NotFoundError } from "../protocol/errors.js";
import type { ObjectRecord } from "./object.js";
import { SiloObject } from "./object.js";
import { type EnvironmentOption, type ListOptions, ObjectService } from "./object-service.js";
import type { Transport } from "./transport.js";
import { checkName } from "../protocol/names.js";

import type { SecretValues } from "../protocol/objects.js";

export type { SecretValues };

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function checkValues(values: SecretValues): SecretValues {
  const keys = Object.keys(values ?? {});
  if (keys.length === 0) throw new InvalidError("A secret needs at least one KEY=VALUE pair", "INVALID");
  for (const k of keys) {
    if (!KEY_RE.test(k)) throw new InvalidError(`Invalid secret key ${JSON.stringify(k)}: use letters, digits and '_', not starting with a digit`, "INVALID");
    if (typeof values[k] !== "string") throw new InvalidError(`Secret value for ${k} must be a string`, "INVALID");
  }
  return values;
}

/** A named set of key/value pairs (credentials), stored encrypted by the server. */
export class Secret extends SiloObject {
  /** The decrypted values; only callers of the secret's own workspace and environment get them. */
  async values(): Promise<SecretValues> {
    return (await this.rpc<{ values: SecretValues }>("GET", `/v1/secrets/${this.id}/values`)).values;
  }

  /** The key names (never the values). */
  async keys(): Promise<string[]> {
    return (await this.rpc<{ keys: string[] }>("GET", `/v1/secrets/${this.id}/keys`)).keys;
  }
}

export interface SecretInfo {
  name: string;
  createdAt: Date;
}

/** `silo.secrets`: create, look up, list and delete secrets (Modal's `modal.secrets`). */
export class SecretService extends ObjectService<Secret> {
  constructor(transport: Transport) {
    super(transport, "secret");
  }

  protected wrap(record: ObjectRecord): Secret {
    return new Secret(this.transport, record);
  }

  /** A stored secret; NotFoundError if missing, or if one of `requiredKeys` is not in it. */
  async fromName(name: string, opts: EnvironmentOption & { requiredKeys?: string[] } = {}): Promise<Secret> {
    const secret = await this.lookup(name, opts);
    if (opts.requiredKeys?.length) {
      const have = new Set(await secret.keys());
      const missing = opts.requiredKeys.filter((k) => !have.has(k));
      if (missing.length) throw new NotFoundError(`Secret '${name}' is missing required keys: ${missing.join(", ")}`, "NOT_FOUND");
    }
    return secret;
  }

  /** An unnamed secret that lives while this process keeps it open (like Modal's `Secret.fromObject`). */
  async fromObject(values: SecretValues, opts: EnvironmentOption = {}): Promise<Secret> {
    checkValues(values);
    const secret = await this.createEphemeral(opts);
    await this.transport.rpc("PUT", `/v1/secrets/${secret.id}/values`, { values }, { environment: secret.environment });
    return secret;
  }

  /** Stores a named secret; AlreadyExistsError if the name is taken, unless `overwrite`. */
  async create(name: string, values: SecretValues, opts: EnvironmentOption & { overwrite?: boolean } = {}): Promise<Secret> {
    checkName(name, "secret name");
    checkValues(values);
    const res = await this.transport.rpc<{ id: string; name: string; workspaceId: string; environment: string; createdAt: number }>(
      "POST",
      "/v1/secrets",
      { name, values, overwrite: opts.overwrite ?? false },
      opts,
    );
    return this.wrap({ id: res.id, kind: "secret", name: res.name, workspaceId: res.workspaceId, environment: res.environment, createdAt: res.createdAt, ephemeral: false, options: {} });
  }

  /** Named secrets, newest first (names and dates only). */
  async list(opts: ListOptions = {}): Promise<SecretInfo[]> {
    return (await this.objects.list(opts)).map((s) => ({ name: s.name!, createdAt: s.createdAt }));
  }
}
