import type { Change, Delta, TreePage, VersionPin } from "../../protocol/volume.js";

/**
 * What the mount daemon needs from the volume service: these methods of the client's `Volume`
 * (client/volume.ts), so the real one is passed in and tests never swap in a fake.
 */
export interface VolumeRemote {
  readonly id: string;
  readonly name: string | null;
  latestVersion(): Promise<number>;
  tree(version: number, opts?: { after?: string; limit?: number }): Promise<TreePage>;
  delta(from: number, to: number): Promise<Delta>;
  readBlock(hash: string, range?: { start: number; end: number }): Promise<Buffer>;
  missingBlocks(hashes: string[]): Promise<string[]>;
  uploadBlock(hash: string, data: Buffer): Promise<void>;
  /** Many small blocks in one request. */
  uploadBlocks(blocks: Array<{ hash: string; data: Buffer }>): Promise<void>;
  commitChanges(req: { baseVersion: number; changes: Change[] }): Promise<{ version: number }>;
  pinVersion(version?: number): Promise<VersionPin>;
  renewPin(pinId: string, version?: number): Promise<VersionPin>;
  unpin(pinId: string): Promise<void>;
  info(): Promise<{ name: string | null; version: number; inodeLimit: number; inodes: number; createdAt: Date | number }>;
}
