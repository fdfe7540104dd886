import { Ajv, type Plugin } from "ajv";
import type { FastifyInstance } from "fastify";
import { bytesKeyword } from "./bytes-keyword.js";

/**
 * How every route's schema is enforced at the edge (one place, for every route):
 *   - bodies are not coerced: `null` is refused wherever a value is required (a JSON `null`
 *     used to become 0, "" or false), and a string is not a number;
 *   - query strings and path parameters are coerced from text, as they must be;
 *   - every number is finite and within ±2^53 (`1e400` parses as Infinity), unless its schema says less;
 *   - every string is well-formed UTF-16: a lone surrogate cannot be stored as UTF-8 and would
 *     silently become U+FFFD, so two different keys could collide.
 */

/** Lone surrogates (a high one not followed by a low one, or a low one not after a high one). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const wellFormedKeyword: Plugin<unknown> = (ajv) => {
  ajv.addKeyword({
    keyword: "x-well-formed",
    errors: false,
    validate: (_schema: boolean, data: unknown) => typeof data !== "string" || !LONE_SURROGATE.test(data),
  });
  return ajv;
};

type Schema = Record<string, unknown>;

/** A copy of `schema` with the bounds above added wherever a (sub)schema does not state its own. */
export function harden(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(harden);
  if (!schema || typeof schema !== "object") return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema as Schema)) {
    if (k === "properties" || k === "patternProperties" || k === "definitions" || k === "$defs") {
      out[k] = Object.fromEntries(Object.entries(v as Schema).map(([name, sub]) => [name, harden(sub)]));
    } else if (["items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "if", "then", "else", "prefixItems"].includes(k)) {
      out[k] = harden(v);
    } else {
      out[k] = v;
    }
  }
  const types = ([] as unknown[]).concat(out.type ?? []);
  if (types.includes("integer") || types.includes("number")) {
    out.maximum ??= Number.MAX_SAFE_INTEGER;
    out.minimum ??= -Number.MAX_SAFE_INTEGER;
  }
  if (types.includes("string")) out["x-well-formed"] = true;
  return out;
}

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({ coerceTypes: coerce ? "array" : false, useDefaults: true, removeAdditional: true, allErrors: false, strict: false });
  bytesKeyword(ajv);
  wellFormedKeyword(ajv);
  return ajv;
}

/** Installs the validator compiler on the root, before any route is added. */
export function installValidation(app: FastifyInstance): void {
  const bodies = makeAjv(false);
  const text = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? bodies : text).compile(harden(schema) as Schema));
}

/**
 * Query strings decoded strictly: a component that is not valid percent-encoded UTF-8 (e.g.
 * `%ED%A0%80`, a lone surrogate's bytes) would otherwise become U+FFFD and collide with a real
 * U+FFFD key. It is decoded to a lone surrogate instead, which every string schema refuses (400).
 */
export function parseQueryString(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const part of query.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = decodeStrict(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? "" : decodeStrict(part.slice(eq + 1));
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

const INVALID_TEXT = "\uD800";

function decodeStrict(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return INVALID_TEXT;
  }
}
