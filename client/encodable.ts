import { InvalidError } from "../protocol/errors.js";

/**
 * The object types msgpackr's structured-clone encoding brings back as the same type. Anything
 * else that is not a plain object would come back as a plain object (its class and methods
 * gone), so it is refused rather than silently changed.
 */
const KEPT_PROTOTYPES: ReadonlySet<object> = new Set<object>([
  Object.prototype,
  Array.prototype,
  Map.prototype,
  Set.prototype,
  Date.prototype,
  RegExp.prototype,
  Error.prototype,
  EvalError.prototype,
  RangeError.prototype,
  ReferenceError.prototype,
  SyntaxError.prototype,
  TypeError.prototype,
  URIError.prototype,
  ArrayBuffer.prototype,
  DataView.prototype,
  Buffer.prototype,
  Uint8Array.prototype,
  Uint8ClampedArray.prototype,
  Int8Array.prototype,
  Uint16Array.prototype,
  Int16Array.prototype,
  Uint32Array.prototype,
  Int32Array.prototype,
  Float32Array.prototype,
  Float64Array.prototype,
  BigUint64Array.prototype,
  BigInt64Array.prototype,
]);

const describe = (value: object): string => {
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name ? `an instance of ${name}` : "an object with a custom prototype";
};

/**
 * Throws InvalidError if `value` holds anything the codec cannot bring back unchanged: a
 * function, a symbol (as a value or a key), or an instance of a class other than the built-ins
 * it keeps (Map, Set, Date, RegExp, Error, typed arrays, ...). `what` names the value in the
 * message ("dict value", "queue item"). Cycles are fine (the codec keeps them).
 */
export function assertEncodable(value: unknown, what: string): void {
  const seen = new Set<object>();
  const visit = (v: unknown, at: string): void => {
    if (typeof v === "function") throw refuse(what, at, "a function");
    if (typeof v === "symbol") throw refuse(what, at, "a symbol");
    if (typeof v !== "object" || v === null || seen.has(v)) return;
    seen.add(v);
    const proto = Object.getPrototypeOf(v) as object | null;
    // Null-prototype objects are plain data: they come back as plain objects with the same keys.
    if (proto !== null && !KEPT_PROTOTYPES.has(proto)) throw refuse(what, at, describe(v));
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return;
    if (v instanceof Map) {
      for (const [k, item] of v) {
        visit(k, `${at} (a Map key)`);
        visit(item, `${at}.get(${typeof k === "string" ? JSON.stringify(k) : "…"})`);
      }
      return;
    }
    if (v instanceof Set) {
      for (const item of v) visit(item, `${at} (a Set member)`);
      return;
    }
    if (Object.getOwnPropertySymbols(v).some((s) => Object.prototype.propertyIsEnumerable.call(v, s))) {
      throw refuse(what, at, "an object with symbol keys");
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) visit(v[i], `${at}[${i}]`);
      return;
    }
    for (const key of Object.keys(v)) visit((v as Record<string, unknown>)[key], `${at}.${key}`);
  };
  visit(value, "");
}

function refuse(what: string, at: string, thing: string): InvalidError {
  const path = at.replace(/^\./, "").trim();
  const where = path === "" ? `The ${what}` : `The ${what} (at ${path})`;
  return new InvalidError(
    `${where} is ${thing}, which cannot be stored unchanged (it would come back ${thing === "a function" || thing === "a symbol" ? "as undefined" : "changed"}); store plain data: strings, numbers, bigint, booleans, null, undefined, arrays, plain objects, Map, Set, Date, RegExp, Error, Uint8Array/Buffer and other typed arrays`,
    "INVALID",
  );
}
