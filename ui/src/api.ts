import { Packr } from "msgpackr";

/** The RPC envelope, as the server speaks it (plain maps, binary as bin). */
const envelope = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" });
/** How the client library encodes dict keys/values and queue items (client/dict-codec.ts, client/queue.ts). */
const values = new Packr({ useRecords: true, mapsAsObjects: false, moreTypes: true, structuredClone: true, int64AsType: "bigint" });

export interface Credentials {
  tokenId: string;
  tokenSecret: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Splits what the user pasted: `tk-…:secret`, or `SILO_TOKEN_ID=… SILO_TOKEN_SECRET=…`. */
export function parseToken(text: string): Credentials | undefined {
  const t = text.trim();
  const env = /SILO_TOKEN_ID=(\S+)\s+SILO_TOKEN_SECRET=(\S+)/.exec(t);
  if (env) return { tokenId: env[1]!, tokenSecret: env[2]! };
  const pair = /^([^:\s]+):(\S+)$/.exec(t);
  return pair ? { tokenId: pair[1]!, tokenSecret: pair[2]! } : undefined;
}

/** The silo HTTP API as the signed-in user, in one environment. */
export class Api {
  constructor(
    readonly creds: Credentials,
    readonly environment = "main",
  ) {}

  withEnvironment(environment: string): Api {
    return new Api(this.creds, environment);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      authorization: `Bearer ${this.creds.tokenId}:${this.creds.tokenSecret}`,
      "x-silo-environment": this.environment,
      accept: "application/msgpack",
      ...extra,
    };
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/msgpack" }),
      body: body === undefined ? undefined : envelope.pack(body),
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    let decoded: unknown;
    try {
      decoded = bytes.length ? envelope.unpack(bytes) : undefined;
    } catch {
      // Not the API's msgpack (a proxy's error page, say): report the status.
      throw new ApiError(res.status, "HTTP", `HTTP ${res.status} from ${path} (not a silo API answer)`);
    }
    if (!res.ok) {
      const err = (decoded as { error?: { code: string; message: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? "HTTP", err?.message ?? `HTTP ${res.status}`);
    }
    return decoded as T;
  }

  /** A file's bytes, for a download (the API needs the token header, so no plain link). */
  async fileBlob(volumeId: string, path: string, version?: number): Promise<Blob> {
    const q = new URLSearchParams({ path });
    if (version !== undefined) q.set("version", String(version));
    const res = await fetch(`/v1/volumes/${volumeId}/file?${q}`, { headers: this.headers({ accept: "*/*" }) });
    if (!res.ok) throw new ApiError(res.status, "HTTP", `Download failed: HTTP ${res.status}`);
    return res.blob();
  }
}

/** A dict key, dict value or queue item, decoded as the client library wrote it. */
export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return values.unpack(bytes);
  } catch {
    return bytes;
  }
}

/** A decoded value for people: JSON-like, with Maps, bigints and bytes spelled out. */
export function showValue(v: unknown, max = 200): string {
  const seen = new WeakSet<object>();
  const text =
    typeof v === "string"
      ? JSON.stringify(v)
      : JSON.stringify(v, (_k, x: unknown) => {
          if (typeof x === "bigint") return `${x}n`;
          if (x instanceof Uint8Array) return `<${x.length} bytes>`;
          if (x instanceof Map) return Object.fromEntries([...x.entries()].map(([k, val]) => [String(k), val]));
          if (x instanceof Set) return [...x];
          if (typeof x === "object" && x !== null) {
            if (seen.has(x)) return "<cycle>";
            seen.add(x);
          }
          return x;
        });
  const s = text ?? String(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
