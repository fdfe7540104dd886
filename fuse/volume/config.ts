import type { ClientConfig } from "../../client/config.js";

/**
 * Everything a volume (or network file system) mount daemon is told by whoever launches it
 * (`silo volume mount`, `silo nfs mount`, `silo run`), sent as JSON on its stdin: credentials
 * never travel on argv or in the environment. `--foreground` runs the same config in the CLI.
 */
export interface VolumeDaemonConfig {
  client: ClientConfig;
  /** The volume's (or network file system's) name, in `client.environment`. */
  volume: string;
  mountPoint: string;
  readOnly: boolean;
  /** Background commit period; 0: only the final commit. */
  commitIntervalMs: number;
  cacheBytes: number;
  /** Cache and control socket (default: stateDirFor(mountPoint)). */
  stateDir?: string;
  /** Stop (commit, unmount) when the launching process dies (`silo run`). */
  exitWithParent?: boolean;
  finalCommitRetryMs?: number;
  /** Where journals live (default `$SILO_JOURNAL_DIR` or `$SILO_HOME/journals` of the launcher). */
  journalRoot?: string;
}
