import type { FastifyError, FastifyInstance } from "fastify";
import { asNoSpace } from "../disk-full.js";
import { SiloError } from "../errors.js";
import { useMsgpackIfAccepted } from "./codec.js";

/** Every failure leaves as `{ error: { code, message } }`, the contract the client maps to typed errors. */
export function installErrorHandler(app: FastifyInstance, opts: { dataDir: string }): void {
  app.setErrorHandler((raw: FastifyError | SiloError, req, reply) => {
    useMsgpackIfAccepted(req, reply);
    // A full disk is an answer (507 NO_SPACE), not an internal error, whichever store hit it.
    const err = asNoSpace(raw, opts.dataDir) as FastifyError | SiloError;
    // A failure while a streamed body was still arriving (e.g. a block upload on a full disk):
    // the rest of it would sit unread on the keep-alive connection and stall the next request.
    if (!req.raw.complete) reply.header("connection", "close");
    if (err instanceof SiloError) {
      return reply.status(err.status).send({ error: { code: err.code, message: err.message } });
    }
    if (err.validation) {
      return reply.status(400).send({ error: { code: "INVALID", message: `Invalid request: ${err.message}` } });
    }
    const status = err.statusCode ?? 500;
    if (status === 413) {
      return reply.status(413).send({ error: { code: "TOO_LARGE", message: "Request body is too large" } });
    }
    if (status >= 500) req.log.error({ err }, "request failed");
    const code = status >= 500 ? "INTERNAL" : status === 404 ? "NOT_FOUND" : "INVALID";
    return reply.status(status).send({ error: { code, message: err.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    useMsgpackIfAccepted(req, reply);
    reply.status(404).send({ error: { code: "NOT_FOUND", message: `No route ${req.method} ${req.url}` } });
  });
}
