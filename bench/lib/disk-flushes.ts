import { readFileSync, statSync } from "node:fs";

/**
 * A counter of the cache flushes (fsync's device barrier) the disk holding `path` has completed,
 * from /proc/diskstats (field 16, Linux 5.5+); undefined where it can not be read. Unlike time,
 * the count a command adds is the same on a loaded machine (bar other processes' fsyncs).
 */
export function diskFlushes(path: string): (() => number) | undefined {
  const dev = statSync(path).dev;
  // Linux's dev_t: major in bits 8-19, minor in bits 0-7 and 20-31.
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  const read = (): number | undefined => {
    for (const line of readFileSync("/proc/diskstats", "utf8").split("\n")) {
      const f = line.trim().split(/\s+/);
      if (Number(f[0]) === major && Number(f[1]) === minor && f.length >= 19) return Number(f[18]);
    }
    return undefined;
  };
  try {
    if (read() === undefined) return undefined;
  } catch {
    return undefined;
  }
  return () => read() ?? 0;
}
