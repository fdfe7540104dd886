import { createServer, type Server } from "node:net";
import { rm } from "node:fs/promises";

/**
 * The mount's control socket: one JSON request per line (`{"op":"commit"}`), one JSON answer
 * per line (`{"ok":true,"result":…}` or `{"ok":false,"error":{"code","message"}}`).
 * client/mount-control.ts is the other end.
 */
export type ControlHandler = (op: string) => Promise<unknown>;

export async function serveControl(socketPath: string, handle: ControlHandler): Promise<Server> {
  await rm(socketPath, { force: true });
  const server = createServer((conn) => {
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void answer(line).then((reply) => conn.writable && conn.write(`${JSON.stringify(reply)}\n`));
      }
    });
    conn.on("error", () => {});
  });
  async function answer(line: string): Promise<unknown> {
    try {
      const { op } = JSON.parse(line) as { op?: unknown };
      if (typeof op !== "string") throw Object.assign(new Error("request needs an 'op'"), { code: "INVALID" });
      return { ok: true, result: await handle(op) };
    } catch (err) {
      const e = err as Error & { code?: unknown };
      return { ok: false, error: { code: typeof e.code === "string" ? e.code : "INTERNAL", message: e.message } };
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}
