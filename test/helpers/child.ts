import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** A node child process whose stdout is JSON lines; `next()` awaits the next line. */
export class JsonLinesChild {
  readonly proc: ChildProcess;
  private readonly lines: unknown[] = [];
  private waiting: Array<() => void> = [];
  private stderr = "";
  readonly exited: Promise<number | null>;

  constructor(script: string, args: string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn(process.execPath, [script, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      this.lines.push(JSON.parse(line));
      for (const wake of this.waiting.splice(0)) wake();
    });
    this.proc.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code) => {
        for (const wake of this.waiting.splice(0)) wake();
        resolve(code);
      }),
    );
  }

  /** Every line printed so far. */
  get output(): unknown[] {
    return this.lines;
  }

  async next<T>(): Promise<T> {
    while (this.lines.length === 0) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`child exited without output:\n${this.stderr}`);
      await new Promise<void>((r) => this.waiting.push(r));
    }
    return this.lines.shift() as T;
  }

  /** Waits for a clean exit; throws with the child's stderr otherwise. */
  async done(): Promise<void> {
    const code = await this.exited;
    if (code !== 0) throw new Error(`child exited with ${code}:\n${this.stderr}`);
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}
