import { connect } from "node:net";

/** Raw bytes on a unix socket: writes `data` (if any), then everything the peer sends until it closes the connection. */
export function rawExchange(socket: string, data: Buffer | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let got = "";
    s.on("data", (d) => (got += d.toString()));
    s.on("error", reject);
    s.on("close", () => resolve(got));
    if (data) s.write(data);
  });
}
