/**
 * `node dist/fuse/kernel/probe/main.js DIR`: mounts a ProbeFs at DIR and takes commands, one
 * JSON line each, on stdin; answers one JSON line each on stdout. The protocol-level tests run
 * it as the serving process and probe the mount from theirs (PROBE_OP_TIMEOUT_MS: the session's op timeout).
 *   {"cmd":"stats"} | {"cmd":"release"} | {"cmd":"set","name":N,"data":BASE64,"notify":BOOL} | {"cmd":"unmount","waitMs"?:MS}
 */
import { createInterface } from "node:readline";
import { mountFuse } from "../mount.js";
import { ProbeFs } from "./probe-fs.js";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: main.js DIR\n");
  process.exit(2);
}
const fs = new ProbeFs();
const mount = await mountFuse(dir, fs, { fsname: "silo-probe", subtype: "silo-probe", allowOther: true, defaultPermissions: true, mkdir: true }, { readers: 3, opTimeoutMs: Number(process.env.PROBE_OP_TIMEOUT_MS) || undefined, lendWriteBuffers: true });
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
out({ ready: true, info: mount.session.info, pid: process.pid, reader: mount.session.reader, ring: mount.session.ring });
void mount.session.ended.then(() => {
  out({ ended: true });
  process.exit(0);
});

type Cmd = { cmd: "stats" } | { cmd: "release" } | { cmd: "set"; name: string; data: string; notify: boolean } | { cmd: "unmount"; waitMs?: number };
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const c = JSON.parse(line) as Cmd;
  switch (c.cmd) {
    case "stats": {
      const s = mount.session.stats;
      out({ maxRead: s.maxRead, maxWrite: s.maxWrite, readBuffers: s.readBuffers, ringRequests: s.ringRequests, requests: Object.fromEntries(s.requests), inFlight: mount.session.inFlight, slowPending: fs.slowPending, ...fs.events });
      break;
    }
    case "release":
      fs.releaseSlow();
      out({ ok: true });
      break;
    case "set": {
      const { parent, ino } = fs.setContent(c.name, Buffer.from(c.data, "base64"));
      if (c.notify) await Promise.all([mount.session.invalInode(ino), mount.session.invalEntry(parent, c.name)]);
      out({ ok: true, ino });
      break;
    }
    case "unmount":
      // Not awaited: a busy mount is detached lazily and ends when its last file is closed,
      // which may take further commands. The end is reported as {"ended":true}.
      void mount.unmount(c.waitMs ?? 60_000);
      break;
  }
}
// stdin closed: the test process is gone; leave no mount behind.
await mount.unmount();
process.exit(0);
