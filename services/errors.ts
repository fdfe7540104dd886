/**
 * Errors the server sends as `{ error: { code, message } }` with an HTTP status.
 * The client maps each `code` to a typed error class (client/errors.ts).
 */
export type ErrorCode =
  | "NOT_FOUND"
  | "VERSION_GONE"
  | "ALREADY_EXISTS"
  | "INVALID"
  | "AUTH"
  | "FORBIDDEN"
  | "CONFLICT"
  | "TOO_LARGE"
  | "QUEUE_EMPTY"
  | "QUEUE_FULL"
  | "VOLUME_BUSY"
  | "NO_SPACE"
  | "UNAVAILABLE"
  | "INTERNAL";

const STATUS: Record<ErrorCode, number> = {
  NOT_FOUND: 404,
  VERSION_GONE: 410,
  ALREADY_EXISTS: 409,
  INVALID: 400,
  AUTH: 401,
  FORBIDDEN: 403,
  CONFLICT: 409,
  TOO_LARGE: 413,
  QUEUE_EMPTY: 408,
  QUEUE_FULL: 429,
  VOLUME_BUSY: 409,
  NO_SPACE: 507,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

export class SiloError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SiloError";
    this.status = STATUS[code];
  }
}

export const notFound = (what: string) => new SiloError("NOT_FOUND", `${what} not found`);
export const invalid = (message: string) => new SiloError("INVALID", message);
export const alreadyExists = (what: string) => new SiloError("ALREADY_EXISTS", `${what} already exists`);
export const forbidden = (message: string) => new SiloError("FORBIDDEN", message);
