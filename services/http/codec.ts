import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { MSGPACK, envelope } from "../../protocol/codec.js";

/**
 * RPC bodies travel as msgpack (binary-safe, compact); JSON is accepted too so curl works.
 * A request that sends `Accept: application/msgpack` gets msgpack back.
 */
export const codecPlugin = fp(async (app: FastifyInstance, opts: { bodyLimit: number }) => {
  app.addContentTypeParser(MSGPACK, { parseAs: "buffer", bodyLimit: opts.bodyLimit }, (_req, body, done) => {
    try {
      done(null, envelope.unpack(body as Buffer));
    } catch {
      done(Object.assign(new Error("Body is not valid msgpack"), { statusCode: 400, code: "INVALID" }), undefined);
    }
  });
  app.addHook("onRequest", async (req, reply) => useMsgpackIfAccepted(req, reply));
  // JSON callers (curl) get bytes as base64 everywhere (dict keys and values, queue items), as they send them.
  app.setReplySerializer((payload) => JSON.stringify(payload, base64Bytes));
});

// fastify types serializers as returning strings; a Buffer body is sent as-is.
const packReply = ((payload: unknown) => envelope.pack(payload)) as unknown as (payload: unknown) => string;

/** Answers in msgpack when the caller accepts it. Called again by the error handler, which resets headers. */
export function useMsgpackIfAccepted(req: FastifyRequest, reply: FastifyReply): void {
  if (acceptsMsgpack(req)) {
    reply.header("content-type", MSGPACK);
    reply.serializer(packReply);
  }
}

/** Whether the answer to `req` is msgpack (a handler may then return bytes it encoded itself, with `envelope`). */
export function acceptsMsgpack(req: FastifyRequest): boolean {
  return req.headers.accept?.includes(MSGPACK) ?? false;
}

/** JSON.stringify replacer: binary values (which Buffer.toJSON would turn into `{type,data}`) become base64. */
function base64Bytes(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64") : value;
}
