import { open } from "node:fs/promises";

/** fsyncs a file or directory by path (`dataOnly`: fdatasync, for a file whose size metadata needs no sync of its own). */
export async function fsyncPath(path: string, dataOnly = false): Promise<void> {
  const fh = await open(path, "r");
  try {
    await (dataOnly ? fh.datasync() : fh.sync());
  } finally {
    await fh.close();
  }
}
