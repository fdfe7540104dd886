import { readFileSync } from "node:fs";
import { parseEnv } from "node:util";
import { UsageError } from "./output.js";

/** `KEY=VALUE` arguments to an object; the value may contain '='. */
export function parseKeyValues(pairs: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`Expected KEY=VALUE, got '${pair}'`);
    values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return values;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`Cannot read '${file}': ${(err as Error).message}`);
  }
}

/** Values of a `.env` file (Node's own dotenv parser: comments, quotes, `export`, multi-line values). */
export function readDotenv(file: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseEnv(readText(file)))) if (value !== undefined) values[key] = value;
  if (Object.keys(values).length === 0) throw new UsageError(`'${file}' holds no KEY=VALUE lines`);
  return values;
}

/** Values of a JSON file holding one flat object; numbers and booleans become their text, anything nested is refused. */
export function readJsonValues(file: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(file));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`'${file}' is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`'${file}' must hold one JSON object of "KEY": "value" pairs`);
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === "string") values[key] = value;
    else if (typeof value === "number" || typeof value === "boolean") values[key] = String(value);
    else throw new UsageError(`'${file}': the value of ${JSON.stringify(key)} must be a string, number or boolean, not ${value === null ? "null" : typeof value}`);
  }
  return values;
}
