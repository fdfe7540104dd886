import type { VolumeBlocks } from "../../client/volume-blocks.js";

/**
 * What the mount daemon talks to: the client's block-level API of the mounted volume
 * (`volume.blocks`), the real one, so tests never swap in a fake.
 */
export type VolumeRemote = VolumeBlocks;
