import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { AuthStore } from "../auth/store.js";
import { useMsgpackIfAccepted } from "./codec.js";

/**
 * Errors raised before a route runs keep the `{ error: { code, message } }` contract too, and
 * say nothing about a request that is not authenticated (401 first, as for every route).
 */

const body = (code: string, message: string) => JSON.stringify({ error: { code, message } });

/** True if the request carries a valid token (the same check as the authenticate hook). */
function authenticated(auth: AuthStore, req: FastifyRequest): boolean {
  const match = /^Bearer ([^:\s]+):(\S+)$/.exec(req.headers.authorization ?? "");
  return !!match && !!auth.verify(match[1]!, match[2]!);
}

/** fastify's `frameworkErrors`: a URL with a bad escape (400) or an over-long path parameter (414). */
export function frameworkErrors(auth: () => AuthStore) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void => {
    useMsgpackIfAccepted(req, reply);
    if (!authenticated(auth(), req)) {
      void reply.status(401).send({ error: { code: "AUTH", message: "Missing, unknown or revoked token" } });
      return;
    }
    const status = err.statusCode ?? 400;
    const code = status === 414 ? "TOO_LARGE" : "INVALID";
    const message = status === 414 ? "A path parameter of the URL is too long" : "The URL is not valid (bad percent-encoding)";
    void reply.status(status).send({ error: { code, message } });
  };
}

/**
 * fastify's `clientErrorHandler`: what Node's HTTP parser refuses before there is a request
 * (a header block over its limit: 431; malformed HTTP: 400). No header was parsed, so the
 * token cannot be checked: the answer names only the protocol error, nothing about silo.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket): void {
  // Answered already: the parser reports every further chunk of the refused request, and
  // destroying the socket now would reset the connection before the caller read the answer.
  if (answered.has(socket) && err.code !== "ECONNRESET") return;
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  answered.add(socket);
  const [status, reason, payload] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", body("TOO_LARGE", "The request's URL and headers are too large")]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", body("INVALID", "The request took too long to arrive")]
        : [400, "Bad Request", body("INVALID", "Malformed HTTP request")];
  // Half-closed, not destroyed: the rest of the refused request may still be arriving, and a
  // socket closed with unread bytes resets the connection, which makes the caller's kernel drop
  // the answer it has not read yet. A caller that never closes its side is cut after LINGER_MS.
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
  );
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once("close", () => clearTimeout(linger));
}

/** Connections whose refused request has its answer. */
const answered = new WeakSet<Socket>();

/** How long a refused request's connection may stay open after the answer (nginx's lingering_timeout is 5 s). */
const LINGER_MS = 5_000;
