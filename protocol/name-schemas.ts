/**
 * The request schemas of names and ids, apart from names.ts so that the client, the CLI and the
 * daemons (which check names but validate no schema) do not load TypeBox.
 */
import { Type } from "typebox";
import { MAX_NAME_CHARS, NAME_PATTERN } from "./names.js";

// The pattern is checked by checkName, whose message says what a valid name looks like.
/** A name in a request body or path. */
export const NameSchema = Type.String({ minLength: 1, maxLength: MAX_NAME_CHARS, description: `A name matching ${NAME_PATTERN}` });
/** An id (of an object, token or lease) in a request. */
export const IdSchema = Type.String({ minLength: 1, maxLength: MAX_NAME_CHARS });
