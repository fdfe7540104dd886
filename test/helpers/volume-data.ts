import { createHash, randomBytes } from "node:crypto";
import type { Volume } from "../../client/index.js";

export const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Reads a whole file of a volume through the streaming API. */
export async function readAll(vol: Volume, path: string, range: { start?: number; end?: number } = {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of vol.readFile(path, range)) chunks.push(c);
  return Buffer.concat(chunks);
}

export const bytes = (n: number) => randomBytes(n);

/** Every path of a volume's latest version, in path order. */
export async function allPaths(vol: Volume, version?: number): Promise<string[]> {
  const v = version ?? (await vol.blocks.latestVersion());
  const out: string[] = [];
  let after: string | undefined;
  do {
    const page = await vol.blocks.tree(v, { after, limit: 5000 });
    out.push(...page.entries.map((e) => e.path));
    after = page.next;
  } while (after !== undefined);
  return out;
}
