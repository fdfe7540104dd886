/** Base class of every error the silo client throws; `code` is the server's error code. */
export class SiloError extends Error {
  constructor(
    message: string,
    readonly code: string = "INTERNAL",
    readonly status?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The named object, key, path or route does not exist. */
export class NotFoundError extends SiloError {}
/** A volume version that garbage collection already dropped (older than the retention window and unpinned). */
export class VersionGoneError extends NotFoundError {}
/** An object with that name already exists. */
export class AlreadyExistsError extends SiloError {}
/** The request was malformed: a bad name, option, path or value. */
export class InvalidError extends SiloError {}
/** Missing, wrong or revoked credentials. */
export class AuthError extends SiloError {}
/** The token may not do this (e.g. an admin operation). */
export class ForbiddenError extends SiloError {}
/** The operation conflicts with the object's current state. */
export class ConflictError extends SiloError {}
/** An item or request is over a size limit. */
export class TooLargeError extends SiloError {}
/** A blocking get timed out, or a non-blocking get found nothing. */
export class QueueEmptyError extends SiloError {}
/** A queue partition is full. */
export class QueueFullError extends SiloError {}
/** A reload was refused because files are open on the mount. */
export class VolumeBusyError extends SiloError {}
/** A limit such as a volume's inode limit was reached (ENOSPC). */
export class NoSpaceError extends SiloError {}
/** The server is shutting down (a waiting call was cut short); try again once it is back. */
export class UnavailableError extends SiloError {}
/** The server could not be reached. */
export class ConnectionError extends SiloError {}

const BY_CODE: Record<string, new (message: string, code: string, status?: number) => SiloError> = {
  NOT_FOUND: NotFoundError,
  VERSION_GONE: VersionGoneError,
  ALREADY_EXISTS: AlreadyExistsError,
  INVALID: InvalidError,
  AUTH: AuthError,
  FORBIDDEN: ForbiddenError,
  CONFLICT: ConflictError,
  TOO_LARGE: TooLargeError,
  QUEUE_EMPTY: QueueEmptyError,
  QUEUE_FULL: QueueFullError,
  VOLUME_BUSY: VolumeBusyError,
  NO_SPACE: NoSpaceError,
  UNAVAILABLE: UnavailableError,
};

/** The typed error for a server error code (also used for per-operation errors inside a batch). */
export function errorFromCode(code: string, message: string, status?: number): SiloError {
  const Class = BY_CODE[code] ?? SiloError;
  return new Class(message, code, status);
}

/** Maps a server `{ error: { code, message } }` to its typed error. */
export function errorFromResponse(status: number, body: unknown): SiloError {
  const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof err?.code === "string" ? err.code : "INTERNAL";
  const message = typeof err?.message === "string" ? err.message : `Server answered HTTP ${status}`;
  return errorFromCode(code, message, status);
}
