/**
 * The error contract: every failure crosses the wire as `{ error: { code, message } }` with the
 * HTTP status of its code, and the client turns each code back into the class listed here.
 * Server, client and mount daemons all throw these classes, so a code is stated once.
 */

/** Each error code with the HTTP status the server answers it with. */
export const ERROR_STATUS = {
  NOT_FOUND: 404,
  VERSION_GONE: 410,
  ALREADY_EXISTS: 409,
  INVALID: 400,
  AUTH: 401,
  FORBIDDEN: 403,
  CONFLICT: 409,
  TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  QUEUE_EMPTY: 408,
  QUEUE_FULL: 429,
  VOLUME_BUSY: 409,
  NO_SPACE: 507,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Base class of every error silo throws; `code` is the wire error code, `status` its HTTP status. */
export class SiloError extends Error {
  /** The code a class stands for when none is given. */
  static readonly code: ErrorCode = "INTERNAL";
  readonly code: string;
  readonly status: number;

  constructor(message: string, code?: string, status?: number) {
    super(message);
    this.name = new.target.name;
    this.code = code ?? (new.target as typeof SiloError).code;
    this.status = status ?? ERROR_STATUS[this.code as ErrorCode] ?? 500;
  }
}

/** The named object, key, path or route does not exist. */
export class NotFoundError extends SiloError {
  static override readonly code: ErrorCode = "NOT_FOUND";
}
/** A volume version that garbage collection already dropped (older than the retention window and unpinned). */
export class VersionGoneError extends NotFoundError {
  static override readonly code: ErrorCode = "VERSION_GONE";
}
/** An object with that name already exists. */
export class AlreadyExistsError extends SiloError {
  static override readonly code: ErrorCode = "ALREADY_EXISTS";
}
/** The request was malformed: a bad name, option, path or value. */
export class InvalidError extends SiloError {
  static override readonly code: ErrorCode = "INVALID";
}
/** Missing, wrong or revoked credentials. */
export class AuthError extends SiloError {
  static override readonly code: ErrorCode = "AUTH";
}
/** The token may not do this (e.g. an admin operation). */
export class ForbiddenError extends SiloError {
  static override readonly code: ErrorCode = "FORBIDDEN";
}
/** The operation conflicts with the object's current state. */
export class ConflictError extends SiloError {
  static override readonly code: ErrorCode = "CONFLICT";
}
/** An item or request is over a size limit. */
export class TooLargeError extends SiloError {
  static override readonly code: ErrorCode = "TOO_LARGE";
}
/** A byte range that starts at or past the end of the file or block. */
export class RangeNotSatisfiableError extends SiloError {
  static override readonly code: ErrorCode = "RANGE_NOT_SATISFIABLE";
}
/** A blocking get timed out, or a non-blocking get found nothing. */
export class QueueEmptyError extends SiloError {
  static override readonly code: ErrorCode = "QUEUE_EMPTY";
}
/** A queue partition is full. */
export class QueueFullError extends SiloError {
  static override readonly code: ErrorCode = "QUEUE_FULL";
}
/** A reload was refused because files are open on the mount. */
export class VolumeBusyError extends SiloError {
  static override readonly code: ErrorCode = "VOLUME_BUSY";
}
/** A limit was reached or the server's disk is full (ENOSPC). */
export class NoSpaceError extends SiloError {
  static override readonly code: ErrorCode = "NO_SPACE";
}
/** The server is shutting down (a waiting call was cut short); try again once it is back. */
export class UnavailableError extends SiloError {
  static override readonly code: ErrorCode = "UNAVAILABLE";
}
/** The server could not be reached (never sent by the server: the client raises it). */
export class ConnectionError extends SiloError {}

const BY_CODE: Record<ErrorCode, typeof SiloError> = {
  NOT_FOUND: NotFoundError,
  VERSION_GONE: VersionGoneError,
  ALREADY_EXISTS: AlreadyExistsError,
  INVALID: InvalidError,
  AUTH: AuthError,
  FORBIDDEN: ForbiddenError,
  CONFLICT: ConflictError,
  TOO_LARGE: TooLargeError,
  RANGE_NOT_SATISFIABLE: RangeNotSatisfiableError,
  QUEUE_EMPTY: QueueEmptyError,
  QUEUE_FULL: QueueFullError,
  VOLUME_BUSY: VolumeBusyError,
  NO_SPACE: NoSpaceError,
  UNAVAILABLE: UnavailableError,
  INTERNAL: SiloError,
};

/** The typed error for an error code (also used for per-operation errors inside a batch). */
export function errorFromCode(code: string, message: string, status?: number): SiloError {
  const Class = BY_CODE[code as ErrorCode] ?? SiloError;
  return new Class(message, code, status);
}

/** Maps a server `{ error: { code, message } }` to its typed error. */
export function errorFromResponse(status: number, body: unknown): SiloError {
  const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof err?.code === "string" ? err.code : "INTERNAL";
  const message = typeof err?.message === "string" ? err.message : `Server answered HTTP ${status}`;
  return errorFromCode(code, message, status);
}
