import type { Dispatcher } from "undici";
import type { ObjectRecord } from "../protocol/objects.js";
import type { CallOptions, RawOptions, Transport } from "./transport.js";

export type { ObjectRecord };

/**
 * Base of every storage object handle (Dict, Queue, Volume, …). An ephemeral object heart-beats
 * while open and is deleted by `close()` / `await using`, or by the server once heartbeats stop.
 */
export class SiloObject implements AsyncDisposable {
  readonly id: string;
  readonly name: string | null;
  readonly environment: string;
  readonly createdAt: Date;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    protected readonly transport: Transport,
    readonly record: ObjectRecord,
  ) {
    this.id = record.id;
    this.name = record.name;
    this.environment = record.environment;
    this.createdAt = new Date(record.createdAt);
    if (record.ephemeral && record.heartbeatIntervalMs) {
      this.heartbeat = setInterval(() => {
        this.transport.rpc("POST", `/v1/objects/${record.kind}/${record.id}/heartbeat`, {}, { environment: this.environment }).catch(() => {
          // A missed beat is retried by the next one; the server only reaps after several.
        });
      }, record.heartbeatIntervalMs);
      // The beat must not keep a finished job alive; if the process ends, the server reaps the object.
      this.heartbeat.unref();
    }
  }

  get ephemeral(): boolean {
    return this.record.ephemeral;
  }

  /** An RPC in this object's environment. */
  protected rpc<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
    return this.transport.rpc<T>(method, path, body, { environment: this.environment, ...opts });
  }

  /** A raw request in this object's environment (byte streams). */
  protected raw(method: Dispatcher.HttpMethod, path: string, opts: RawOptions = {}): Promise<Dispatcher.ResponseData> {
    return this.transport.raw(method, path, { environment: this.environment, ...opts });
  }

  /** Deletes an ephemeral object; a no-op for a named one. */
  async close(): Promise<void> {
    if (!this.record.ephemeral) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    await this.transport.rpc("DELETE", `/v1/objects/${this.record.kind}/${this.id}`, undefined, { environment: this.environment }).catch((err: Error) => {
      if (err.name !== "NotFoundError") throw err;
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
