import { type ErrorCode, errorFromCode, type SiloError } from "../protocol/errors.js";

export { SiloError } from "../protocol/errors.js";

/** The typed error for `code`: what a route throws so the error handler answers it with its status. */
export const siloError = (code: ErrorCode, message: string): SiloError => errorFromCode(code, message);

export const notFound = (what: string) => siloError("NOT_FOUND", `${what} not found`);
export const invalid = (message: string) => siloError("INVALID", message);
export const alreadyExists = (what: string) => siloError("ALREADY_EXISTS", `${what} already exists`);
export const forbidden = (message: string) => siloError("FORBIDDEN", message);
