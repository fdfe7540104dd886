import type { Plugin } from "ajv";

/**
 * JSON-schema keyword `x-bytes: true`: the field holds binary data. msgpack callers send
 * it as bin (a Buffer after decoding); JSON callers send base64, which is decoded in place.
 */
export const bytesKeyword: Plugin<unknown> = (ajv) => {
  ajv.addKeyword({
    keyword: "x-bytes",
    modifying: true,
    errors: false,
    validate(_schema: boolean, data: unknown, _parent?: unknown, ctx?: { parentData: Record<string | number, unknown>; parentDataProperty: string | number }) {
      if (data instanceof Uint8Array) return true;
      if (typeof data === "string" && ctx) {
        ctx.parentData[ctx.parentDataProperty] = Buffer.from(data, "base64");
        return true;
      }
      return false;
    },
  });
  return ajv;
};
