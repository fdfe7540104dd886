import { type Server, type Socket, connect, createServer } from "node:net";

/** What the relay does to the connections it relays. */
export type Fault = "shift-ranges" | "one-request-per-connection" | "close-kept-alive";

/**
 * Relays TCP to `port`. "shift-ranges" rewrites a range read past the first byte into one of
 * the file's start (the answer then says so in its Content-Range); "one-request-per-connection"
 * closes a file-reading connection, unanswered, when a second request comes on it;
 * "close-kept-alive" does so to any connection (a server that closed a kept-alive connection
 * while idle, unnoticed by the client).
 */
export async function relay(port: number, fault: Fault): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = connect(port, "127.0.0.1");
    sockets.add(down).add(up);
    let requests = 0;
    let fileReads = false;
    down.on("data", (chunk: Buffer) => {
      let head = chunk.toString("latin1");
      // A request starts a chunk with its request line (the client writes a body after its head).
      if (/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(head) && requests++ === 0) fileReads = /^GET \/v1\/volumes\/[^/]+\/file\?/.test(head);
      if (requests > 1 && (fault === "close-kept-alive" || (fileReads && fault === "one-request-per-connection"))) {
        down.destroy();
        up.destroy();
        return;
      }
      if (fileReads && fault === "shift-ranges") {
        head = head.replace(/^range: bytes=(\d+)-(\d+)$/im, (line, s: string, e: string) => (Number(s) > 0 ? `range: bytes=0-${Number(e) - Number(s)}` : line));
      }
      up.write(Buffer.from(head, "latin1"));
    });
    up.on("data", (chunk: Buffer) => down.write(chunk));
    for (const [a, b] of [[down, up], [up, down]] as const) {
      a.on("end", () => b.end());
      a.on("error", () => b.destroy());
      a.on("close", () => sockets.delete(a));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port: relayPort } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${relayPort}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
