import type { FastifyBaseLogger } from "fastify";
import { SiloError } from "../errors.js";
import type { DictEntries } from "./entries.js";
import type { GroupCommit } from "../kv-group-commit.js";

/** One operation of a batched request. Keys and values are the client's msgpack bytes. */
export type DictOp =
  | { op: "get"; key: Buffer }
  | { op: "contains"; key: Buffer }
  | { op: "len" }
  | { op: "put"; key: Buffer; value: Buffer; skipIfExists?: boolean }
  | { op: "pop"; key: Buffer }
  | { op: "update"; entries: Array<[Buffer, Buffer]> };

/** Each operation answers on its own: a value (bytes, null when missing, a boolean or a count) or an error. */
export type OpResult = { ok: Buffer | boolean | number | null } | { error: { code: string; message: string } };

const READS = new Set<DictOp["op"]>(["get", "contains", "len"]);

function runOne(entries: DictEntries, dictId: string, op: DictOp, now: number): Buffer | boolean | number | null {
  switch (op.op) {
    case "get":
      return entries.get(dictId, op.key, now) ?? null;
    case "contains":
      return entries.contains(dictId, op.key, now);
    case "len":
      return entries.len(dictId, now);
    case "put":
      return entries.put(dictId, op.key, op.value, op.skipIfExists ?? false, now);
    case "pop":
      return entries.pop(dictId, op.key, now) ?? null;
    case "update":
      entries.update(dictId, op.entries, now);
      return null;
  }
}

function settle(log: FastifyBaseLogger, fn: () => Buffer | boolean | number | null): OpResult {
  try {
    return { ok: fn() };
  } catch (err) {
    if (err instanceof SiloError) return { error: { code: err.code, message: err.message } };
    log.error({ err }, "dict operation failed");
    return { error: { code: "INTERNAL", message: "Internal error" } };
  }
}

/**
 * Runs a batch in order. A batch of reads runs at once; a batch with a write runs as one LMDB
 * transaction (later operations see earlier ones) and answers only once that commit is flushed
 * to disk. An operation's error fails that operation only.
 */
export async function runOps(commits: GroupCommit, entries: DictEntries, dictId: string, ops: DictOp[], log: FastifyBaseLogger): Promise<OpResult[]> {
  if (ops.every((op) => READS.has(op.op))) {
    const now = entries.clock.now();
    return ops.map((op) => settle(log, () => runOne(entries, dictId, op, now)));
  }
  // A batch that only reads and pops frees space: it may use the disk reserve on a full disk.
  const freesSpace = ops.every((op) => READS.has(op.op) || op.op === "pop");
  return commits.run(() => {
    const now = entries.clock.now();
    return ops.map((op) => settle(log, () => runOne(entries, dictId, op, now)));
  }, { freesSpace });
}
