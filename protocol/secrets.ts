/** The secret routes' wire contract, stated once with TypeBox. */
import { Type } from "typebox";
import { IdSchema } from "./name-schemas.js";
import { MAX_NAME_CHARS } from "./names.js";

/** Environment-variable-like keys: what jobs and mounts read them as. */
export const SECRET_KEY_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";

/** Key → value; a key that does not match is refused (not dropped), hence propertyNames. */
export const SecretValuesSchema = Type.Unsafe<Record<string, string>>({
  type: "object",
  minProperties: 1,
  maxProperties: 200,
  propertyNames: { pattern: SECRET_KEY_PATTERN },
  additionalProperties: { type: "string", maxLength: 65536 },
});
export const CreateSecretBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: MAX_NAME_CHARS }),
  values: SecretValuesSchema,
  overwrite: Type.Optional(Type.Boolean()),
});
export const SecretParams = Type.Object({ id: IdSchema });
export const PutSecretValuesBody = Type.Object({ values: SecretValuesSchema });
