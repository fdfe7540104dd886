// A separate process using the compiled client, for the multi-process queue tests.
//   node queue-worker.mjs produce QUEUE '{"producer":0,"count":10000,"partitions":["",  "a"],"chunk":50}'
//   node queue-worker.mjs consume QUEUE '{"partitions":["", "a"]}'   -> prints JSON [{p,k,part}, …] in receive order
//   node queue-worker.mjs put QUEUE '{"value":…,"partition":"x"}'
// Credentials come from SILO_SERVER_URL / SILO_TOKEN_ID / SILO_TOKEN_SECRET.
import { QueueEmptyError, SiloClient } from "../../dist/client/index.js";

const [mode, name, json] = process.argv.slice(2);
const args = JSON.parse(json ?? "{}");
const silo = new SiloClient();
const q = await silo.queues.fromName(name);
const part = (p) => (p === "" ? undefined : p);

if (mode === "produce") {
  const { producer, count, partitions, chunk } = args;
  // Items of one partition go out in order: putMany chunks, and every 20th chunk as single puts.
  const byPartition = new Map(partitions.map((p) => [p, []]));
  for (let k = 0; k < count; k++) byPartition.get(partitions[k % partitions.length]).push({ p: producer, k, part: partitions[k % partitions.length] });
  await Promise.all(
    [...byPartition].map(async ([p, items]) => {
      for (let i = 0, n = 0; i < items.length; i += chunk, n++) {
        const slice = items.slice(i, i + chunk);
        if (n % 20 === 3) for (const item of slice) await q.put(item, { partition: part(p) });
        else await q.putMany(slice, { partition: part(p) });
      }
    }),
  );
} else if (mode === "consume") {
  // Takes from every partition until a full round finds them all empty after the "done" signal.
  const received = [];
  for (;;) {
    const done = (await q.len({ partition: "done" })) > 0;
    let got = 0;
    for (const p of args.partitions) {
      try {
        const items = Math.random() < 0.1 ? [await q.get({ partition: part(p), timeoutMs: 50 })] : await q.getMany(100, { partition: part(p), timeoutMs: 50 });
        received.push(...items);
        got += items.length;
      } catch (err) {
        if (!(err instanceof QueueEmptyError)) throw err;
      }
    }
    if (got === 0 && done) break;
  }
  process.stdout.write(JSON.stringify(received));
} else if (mode === "put") {
  await q.put(args.value, { partition: args.partition });
} else {
  throw new Error(`unknown mode ${mode}`);
}
await silo.close();
