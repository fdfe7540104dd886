import type { Plugin } from "ajv";

/** Standard base64 (what Buffer.toString("base64") writes), padding included. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * JSON-schema keyword `x-bytes: true | N`: the field holds binary data (of at most N bytes).
 * msgpack callers send it as bin (a Buffer after decoding); JSON callers send base64, which is
 * checked (invalid base64 is refused, not decoded to garbage) and decoded in place.
 */
export const bytesKeyword: Plugin<unknown> = (ajv) => {
  ajv.addKeyword({
    keyword: "x-bytes",
    modifying: true,
    errors: false,
    validate(schema: boolean | number, data: unknown, _parent?: unknown, ctx?: { parentData: Record<string | number, unknown>; parentDataProperty: string | number }) {
      const max = typeof schema === "number" ? schema : Infinity;
      if (data instanceof Uint8Array) return data.length <= max;
      if (typeof data === "string" && ctx && BASE64.test(data)) {
        const bytes = Buffer.from(data, "base64");
        ctx.parentData[ctx.parentDataProperty] = bytes;
        return bytes.length <= max;
      }
      return false;
    },
  });
  return ajv;
};
