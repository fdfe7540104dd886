import { InvalidError } from "../protocol/errors.js";
import type { ObjectRecord, SiloObject } from "./object.js";
import type { Transport } from "./transport.js";
import { checkName } from "../protocol/names.js";

export interface EnvironmentOption {
  /** Environment to act in; defaults to the client's (`SILO_ENVIRONMENT`, else `main`). */
  environment?: string;
}
export interface FromNameOptions extends EnvironmentOption {
  createIfMissing?: boolean;
}
export interface CreateOptions extends EnvironmentOption {
  /** No error if the object exists already. */
  allowExisting?: boolean;
}
export interface ListOptions extends EnvironmentOption {
  maxObjects?: number;
  /** Only objects created before this moment. */
  createdBefore?: Date | string;
}
export interface DeleteOptions extends EnvironmentOption {
  /** No error if the object does not exist. */
  allowMissing?: boolean;
}

/** `service.objects`: managing the named objects of one kind. */
export class ObjectManager<T extends SiloObject> {
  constructor(
    private readonly transport: Transport,
    private readonly kind: string,
    private readonly wrap: (record: ObjectRecord) => T,
  ) {}

  /** Creates a named object; AlreadyExistsError if it exists, unless `allowExisting`. */
  async create(name: string, opts: CreateOptions & { options?: Record<string, unknown> } = {}): Promise<void> {
    checkName(name);
    await this.transport.rpc(
      "POST",
      `/v1/objects/${this.kind}`,
      { name, allowExisting: opts.allowExisting ?? false, options: opts.options ?? {} },
      opts,
    );
  }

  /** Named objects, newest first. */
  async list(opts: ListOptions = {}): Promise<T[]> {
    let createdBefore: number | undefined;
    if (opts.createdBefore !== undefined) {
      createdBefore = new Date(opts.createdBefore).getTime();
      if (Number.isNaN(createdBefore)) throw new InvalidError(`Invalid createdBefore date: ${String(opts.createdBefore)}`, "INVALID");
    }
    const res = await this.transport.rpc<{ objects: ObjectRecord[] }>("GET", `/v1/objects/${this.kind}`, undefined, {
      ...opts,
      query: { maxObjects: opts.maxObjects, createdBefore },
    });
    return res.objects.map(this.wrap);
  }

  /**
   * Deletes a named object and all its contents; irreversible. Resolves to false if it did not
   * exist (only with `allowMissing`; without it that is a NotFoundError).
   */
  async delete(name: string, opts: DeleteOptions = {}): Promise<boolean> {
    checkName(name);
    const res = await this.transport.rpc<{ existed?: boolean }>("DELETE", `/v1/objects/${this.kind}/by-name/${encodeURIComponent(name)}`, undefined, {
      ...opts,
      query: { allowMissing: opts.allowMissing ?? false },
    });
    return res.existed !== false;
  }

  /** Renames a named object; AlreadyExistsError if `newName` is taken. */
  async rename(name: string, newName: string, opts: EnvironmentOption = {}): Promise<void> {
    checkName(name);
    checkName(newName);
    await this.transport.rpc("POST", `/v1/objects/${this.kind}/rename`, { name, newName }, opts);
  }
}

/**
 * The per-kind entry point (`silo.dicts`, `silo.queues`, …), shaped like Modal's SDK services:
 * `fromName`, `ephemeral`, `delete`, and the `objects` namespace.
 */
export abstract class ObjectService<T extends SiloObject> {
  readonly objects: ObjectManager<T>;

  constructor(
    protected readonly transport: Transport,
    protected readonly kind: string,
  ) {
    this.objects = new ObjectManager(transport, kind, (r) => this.wrap(r));
  }

  protected abstract wrap(record: ObjectRecord): T;

  /** Looks up a named object (creating it with `createIfMissing`); NotFoundError otherwise. */
  protected async lookup(name: string, opts: FromNameOptions = {}, options?: Record<string, unknown>): Promise<T> {
    checkName(name);
    const record = await this.transport.rpc<ObjectRecord>(
      "POST",
      `/v1/objects/${this.kind}/lookup`,
      { name, createIfMissing: opts.createIfMissing ?? false, options: options ?? {} },
      opts,
    );
    return this.wrap(record);
  }

  /** Creates an anonymous object that lives until `close()` (or `await using` ends, or its process dies). */
  protected async createEphemeral(opts: EnvironmentOption = {}, options?: Record<string, unknown>): Promise<T> {
    const record = await this.transport.rpc<ObjectRecord>("POST", `/v1/objects/${this.kind}/ephemeral`, { options: options ?? {} }, opts);
    return this.wrap(record);
  }

  /** Deletes a named object and all its contents; irreversible. False if it did not exist (with `allowMissing`). */
  delete(name: string, opts: DeleteOptions = {}): Promise<boolean> {
    return this.objects.delete(name, opts);
  }
}
