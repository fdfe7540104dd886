import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  QueueClearBody,
  QueueConfirmBody,
  QueueGetBody,
  type QueueGetReply,
  type QueueInfoReply,
  QueueLenQuery,
  QueueParams,
  QueuePeekBody,
  QueuePartitionsQuery,
  QueuePutBody,
} from "../../protocol/queue.js";
import { QUEUE_LIMITS } from "../../protocol/limits.js";
import type { Caller } from "../auth/authenticate.js";
import { invalid, siloError } from "../errors.js";
import type { ObjectRegistry } from "../objects/registry.js";
import { DEFAULT_PARTITION, MAX_WAIT_MS, partitionKey } from "./limits.js";
import type { QueueStore } from "./store.js";

/**
 * Aborts when the caller's connection closes before its answer was sent: a waiting call then
 * leaves its wait list, and a get hands its items back instead of writing them into the void.
 */
function disconnectSignal(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const socket = req.raw.socket;
  const gone = () => {
    if (!reply.raw.writableEnded) ac.abort();
  };
  // The caller may have hung up while the body was parsed, before this handler ran.
  if (!socket || socket.destroyed || socket.readableEnded) {
    gone();
    return ac.signal;
  }
  // The socket's own 'end' is the earliest sign of a hang-up; the response's 'close' comes later.
  socket.once("end", gone);
  socket.once("close", gone);
  reply.raw.once("close", () => {
    socket.off("end", gone);
    socket.off("close", gone);
    gone();
  });
  return ac.signal;
}

/** Test hook (server started with SILO_TEST_HOOKS=1): hold a get's answer this many ms after its lease is durable. */
const TEST_HOLD_HEADER = "x-silo-test-hold-answer-ms";

/** Waits `ms` or until the caller disconnects; true if it did. */
function heldUntilGone(signal: AbortSignal, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function noContradiction(partitionGiven: boolean, flag: boolean | undefined, name: string): void {
  if (partitionGiven && flag) throw invalid(`'partition' and '${name}' contradict each other: give one or the other`);
}

/** The queue data routes; naming, listing and deleting queues are the shared `/v1/objects/queue` routes. */
export function queueRoutes(
  fastify: FastifyInstance,
  deps: { registry: ObjectRegistry; store: QueueStore; defaultTtlMs: number; leaseMs: number; testHooks: boolean },
): void {
  const { registry, store, defaultTtlMs, leaseMs, testHooks } = deps;
  // Schemas and handler types come from one definition each (protocol/queue.ts).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // Resolving the owner is what confines a caller to its own workspace and environment.
  const queueId = (req: { caller: Caller; params: { id: string } }) => registry.resolveId(req.caller, "queue", req.params.id);

  app.post(
    "/v1/queues/:id/put",
    { schema: { description: "Append items (msgpack-encoded values) to a partition, atomically; waits for room when full and `block`.", params: QueueParams, body: QueuePutBody } },
    async (req, reply) => {
      const { body } = req;
      // The items arrive as Buffers (msgpack bin, or decoded base64); a view types them so.
      const items = body.items.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      await store.put(queueId(req), partitionKey(body.partition), items, body.partitionTtlMs ?? defaultTtlMs, {
        block: body.block ?? true,
        timeoutMs: body.timeoutMs ?? MAX_WAIT_MS,
        signal: disconnectSignal(req, reply),
      });
      return {};
    },
  );

  app.post(
    "/v1/queues/:id/get",
    { schema: { description: "Remove and return up to n items from a partition's head; a blocking call waits for at least one.", params: QueueParams, body: QueueGetBody } },
    async (req, reply) => {
      const { body } = req;
      const signal = disconnectSignal(req, reply);
      const lease = await store.get(queueId(req), partitionKey(body.partition), body.n ?? 1, {
        block: body.block ?? true,
        timeoutMs: body.timeoutMs ?? MAX_WAIT_MS,
        signal,
      });
      if (!lease) return { items: [], lease: null, leaseMs } satisfies QueueGetReply;
      const hold = testHooks ? Number(req.headers[TEST_HOLD_HEADER] ?? 0) : 0;
      if (hold > 0 && (await heldUntilGone(signal, hold))) {
        await store.release(lease);
        throw siloError("CONFLICT", "The client disconnected while its answer was held");
      }
      return { items: lease.values, lease: lease.id, leaseMs } satisfies QueueGetReply;
    },
  );

  app.post(
    "/v1/queues/:id/confirm",
    {
      schema: {
        description:
          "Confirm receipt of the items of these get answers (their `lease`): they are gone for good. Unconfirmed items return to the head of their partition when their lease runs out.",
        params: QueueParams,
        body: QueueConfirmBody,
      },
    },
    async (req) => ({ confirmed: await store.confirm(queueId(req), req.body.leases) }),
  );

  app.post(
    "/v1/queues/:id/peek",
    { schema: { description: "Read up to n items after position `after` without removing them, waiting up to timeoutMs for one.", params: QueueParams, body: QueuePeekBody } },
    async (req, reply) => {
      const { body } = req;
      const { seqs, values } = await store.peek(
        queueId(req),
        partitionKey(body.partition),
        body.n ?? 1,
        body.after ?? 0,
        body.timeoutMs ?? 0,
        disconnectSignal(req, reply),
      );
      return { items: values, positions: seqs };
    },
  );

  app.get(
    "/v1/queues/:id/len",
    { schema: { description: "Number of items in a partition, or in all partitions with total=true.", params: QueueParams, querystring: QueueLenQuery } },
    async (req) => {
      const { partition: p, total } = req.query;
      noContradiction(p !== undefined, total, "total");
      const id = queueId(req);
      return { len: total ? store.stats(id).items : store.len(id, partitionKey(p)) };
    },
  );

  app.post(
    "/v1/queues/:id/clear",
    { schema: { description: "Drop the items of one partition, or of all partitions with all=true.", params: QueueParams, body: QueueClearBody } },
    async (req) => {
      const { partition: p, all } = req.body ?? {};
      noContradiction(p !== undefined, all, "all");
      await store.clear(queueId(req), all ? undefined : partitionKey(p));
      return {};
    },
  );

  app.get(
    "/v1/queues/:id/partitions",
    {
      schema: {
        description: "A queue's partitions in key order, each with its items and expiry; `partition` is null for the default one.",
        params: QueueParams,
        querystring: QueuePartitionsQuery,
      },
    },
    async (req) => {
      const { partitions, truncated } = store.partitions(queueId(req), req.query.limit ?? QUEUE_LIMITS.defaultPartitionsPage);
      return {
        partitions: partitions.map((p) => ({ partition: p.key === DEFAULT_PARTITION ? null : p.key, items: p.items, expiresAt: p.expiresAt })),
        truncated,
      };
    },
  );

  app.get(
    "/v1/queues/:id/info",
    { schema: { description: "Item and partition counts of a queue.", params: QueueParams } },
    async (req): Promise<QueueInfoReply> => {
      const record = registry.get(req.caller, "queue", req.params.id);
      const { items, partitions, inFlight } = store.stats(record.id);
      return {
        id: record.id,
        name: record.name,
        environment: record.environment,
        createdAt: record.createdAt,
        totalItems: items,
        partitions,
        inFlight,
      };
    },
  );
}
