/** The workspace, token and environment routes' wire contract, stated once with TypeBox. */
import { Type } from "typebox";
import { NAME_PATTERN } from "./names.js";

export const WorkspaceBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64, description: `A name matching ${NAME_PATTERN}` }) });
export const TokenBody = Type.Object({ label: Type.Optional(Type.String({ maxLength: 200 })) });
export const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
