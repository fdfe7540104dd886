/** The workspace, token and environment routes' wire contract, stated once with TypeBox. */
import { Type } from "typebox";
import { IdSchema, NameSchema } from "./name-schemas.js";

export const WorkspaceBody = Type.Object({ name: NameSchema });
export const TokenBody = Type.Object({ label: Type.Optional(Type.String({ maxLength: 200 })) });
export const TokenParams = Type.Object({ id: IdSchema });
