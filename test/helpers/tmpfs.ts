import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A small tmpfs for disk-full tests (the suite runs as root; CI too). `fill()` takes every
 * free byte with a filler file, `free()` gives it back; `unmount()` must run in teardown.
 */
export class SmallDisk {
  private filler = 0;

  private constructor(readonly dir: string) {}

  /** `inodes`: how many files and directories it holds (tmpfs's default grows with RAM). */
  static mount(sizeBytes: number, inodes?: number): SmallDisk {
    const dir = mkdtempSync(join(tmpdir(), "silo-tmpfs-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}${inodes ? `,nr_inodes=${inodes}` : ""}`, "tmpfs", dir]);
    return new SmallDisk(dir);
  }

  /** Writes filler files until the file system refuses (ENOSPC). */
  fill(): void {
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (;;) {
      const fd = openSync(join(this.dir, `filler-${this.filler++}`), "w");
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      } finally {
        closeSync(fd);
      }
      // Smaller writes can still fit into the last partial page; take those too.
      try {
        const fd2 = openSync(join(this.dir, `filler-${this.filler++}`), "w");
        try {
          for (;;) writeSync(fd2, Buffer.alloc(512, 7));
        } finally {
          closeSync(fd2);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOSPC") return;
        throw err;
      }
    }
  }

  /** Creates empty filler files until no inode is left (ENOSPC): no new file fits, existing ones still grow. */
  fillInodes(): void {
    for (;;) {
      try {
        closeSync(openSync(join(this.dir, `filler-${this.filler}`), "w"));
        this.filler++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOSPC") return;
        throw err;
      }
    }
  }

  /** Deletes the filler files. */
  free(): void {
    for (let i = 0; i < this.filler; i++) rmSync(join(this.dir, `filler-${i}`), { force: true });
    this.filler = 0;
  }

  unmount(): void {
    if (readFileSync("/proc/mounts", "utf8").includes(` ${this.dir} `)) execFileSync("umount", ["-l", this.dir]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
