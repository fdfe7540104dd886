import { mkdir, rm } from "node:fs/promises";
import type { Server } from "node:net";
import { join, resolve } from "node:path";
import { SiloClient } from "../../client/silo-client.js";
import { reportToParent } from "../common/daemon-process.js";
import { type ServingDaemon, serveUntilStopped, survivesLogFailures } from "../common/daemon-runtime.js";
import { clearStaleMount } from "../common/mount-table.js";
import { BlockCache } from "./block-cache.js";
import { fuseFdAddonIfBuilt } from "../../lib/native-addon.js";
import { serveControl } from "./control-server.js";
import { ContentStore } from "./file-content.js";
import { VolumeFs, volumeErrno } from "./fuse-ops.js";
import type { Filesystem } from "../kernel/filesystem.js";
import { type FuseMount, mountAccessNote, mountFuse } from "../kernel/mount.js";
import { claimOrphans, Journal, journalRoot, volumeJournalDir } from "./journal.js";
import { MountPin } from "./mount-pin.js";
import { stateDirFor } from "./state-dir.js";
import { JOURNAL_COMPACT_BYTES, MountedVolume } from "./mounted-volume.js";
import { DEFAULT_INODE_CACHE } from "./inode-cache.js";
import { WholeFiles } from "./whole-files.js";
import { localFirst, localOpen, type VolumeRemote } from "./remote.js";
import type { VolumeDaemonConfig } from "./config.js";

export interface VolumeDaemonOptions {
  dir: string;
  readOnly: boolean;
  /** Background commit period; 0 disables background commits (the final one still runs). */
  commitIntervalMs: number;
  cacheBytes: number;
  /** Block cache and control socket live here (default: stateDirFor(dir)); local changes live in the journal (read-only mounts: here). */
  stateDir?: string;
  /** Stop (commit, unmount) when the process that started us dies (`silo run` killed hard). */
  exitWithParent?: boolean;
  /**
   * The server's URL and the environment: with the volume id they name the volume's journals.
   * Writable volume mounts keep a journal; mounts with a `consistency` layer (nfs) commit at
   * every close instead and have none.
   */
  server?: string;
  environment?: string;
  /** Where journals live (default journalRoot(): `$SILO_JOURNAL_DIR` or `$SILO_HOME/journals`). */
  journalRoot?: string;
  /** How long the final commit retries transient failures before it gives up (default 60 s). */
  finalCommitRetryMs?: number;
  /** Consistency beyond commit/reload (a network file system's close-to-open: fuse/nfs). */
  consistency?: MountConsistency;
}

/**
 * How a mount of another file-tree kind keeps in step with the server, layered on the volume
 * mount's file system (fuse/nfs/close-to-open.ts) so that this daemon stays the one mount daemon.
 */
export interface MountConsistency {
  /** The kind named in the mount record and log ("nfs"). */
  kind: string;
  /** How long the kernel may cache names and attributes. */
  kernelCacheSeconds: number;
  wrap(fs: VolumeFs, mv: MountedVolume, log: (msg: string) => void): Filesystem;
}

/** What the ready handshake tells the parent about a running mount. */
export interface MountInfo {
  pid: number;
  dir: string;
  socket: string;
  volume: string | null;
  volumeId: string;
  readOnly: boolean;
  version: number;
  /** The mount's journal directory (absent for read-only mounts). */
  journal: string | null;
}

/** Default per-mount state dir: derived from the mount point (one mount per directory). */
export { stateDirFor };

/**
 * How long the kernel caches names and attributes (FUSE entry/attr timeouts). Only a reload
 * changes the tree behind the kernel's back, and it invalidates what changed.
 */
const KERNEL_CACHE_MS = 60_000;

const log = (msg: string) => process.stderr.write(`[silo volume mount] ${msg}\n`);

/**
 * Serves the mount a launcher's config describes until it stops, and resolves with the exit
 * code: what a daemon's entry point (fuse/volume/main.ts, fuse/nfs/main.ts) runs, and what
 * `--foreground` runs in the CLI. `open` finds the file tree by name (a volume, a network file
 * system); `consistency` is the kind's layer over the volume file system (nfs: close-to-open).
 */
export async function serveMountConfig(
  config: VolumeDaemonConfig,
  open: (silo: SiloClient, name: string) => Promise<VolumeRemote>,
  consistency?: MountConsistency,
): Promise<number> {
  const silo = new SiloClient(config.client);
  try {
    return await runVolumeDaemon(await open(silo, config.volume), {
      dir: config.mountPoint,
      readOnly: config.readOnly,
      commitIntervalMs: config.commitIntervalMs,
      cacheBytes: config.cacheBytes,
      stateDir: config.stateDir,
      exitWithParent: config.exitWithParent,
      server: config.client.serverUrl,
      environment: config.client.environment,
      finalCommitRetryMs: config.finalCommitRetryMs,
      journalRoot: config.journalRoot,
      consistency,
    });
  } catch (err) {
    // runVolumeDaemon reported its own failures (a second report is a no-op); this covers the lookup.
    reportToParent({ error: (err as Error).message });
    log((err as Error).message);
    return 1;
  } finally {
    await silo.close().catch(() => {});
  }
}

/** Serves a volume mount (see serveMountConfig). */
export function serveVolumeMount(config: VolumeDaemonConfig): Promise<number> {
  return serveMountConfig(config, async (silo, name) => (await silo.volumes.fromName(name)).blocks);
}

/**
 * Runs a volume mount in this process until SIGTERM/SIGINT, an unmount request, an external
 * unmount or (exitWithParent) the parent's death: then a final commit, unmount, and cleanup.
 * Resolves with the process exit code.
 */
/**
 * The largest READ where READs are spliced: a spliced reply must fit a pipe whole, and a pipe
 * holds 1 MiB (256 pages) without CAP_SYS_RESOURCE, one page short of a 1 MiB READ and its
 * header. 512 KiB READs were the cheapest and fastest in the cold-read benchmark (docs/benchmarks.md,
 * "Cold reads spliced"); SILO_FUSE_MAX_READ overrides.
 */
const SPLICED_MAX_READ = 512 * 1024;

export async function runVolumeDaemon(remote: VolumeRemote, opts: VolumeDaemonOptions): Promise<number> {
  survivesLogFailures();
  const dir = resolve(opts.dir);
  const stateDir = resolve(opts.stateDir ?? stateDirFor(dir));
  const socket = join(stateDir, "control.sock");
  const flushMs = envInteger("SILO_JOURNAL_FLUSH_MS", 1_000, 10, 2 ** 31 - 1, process.env);
  const compactBytes = envInteger("SILO_JOURNAL_COMPACT_BYTES", JOURNAL_COMPACT_BYTES, 1, Number.MAX_SAFE_INTEGER, process.env);
  // Entries of loaded directories kept in memory; past it the least recently used clean ones go (tree-cache.ts).
  const inodeCache = envInteger("SILO_INODE_CACHE", DEFAULT_INODE_CACHE, 1, Number.MAX_SAFE_INTEGER, process.env);
  let fuse: FuseMount | undefined;
  let control: Server | undefined;
  let cache: BlockCache | undefined;
  let wholeFiles: WholeFiles | undefined;
  let pin: MountPin | undefined;
  let journal: Journal | undefined;
  try {
    if (await clearStaleMount(dir)) log(`removed a stale mount at ${dir} (its daemon had died)`);
    await rm(stateDir, { recursive: true, force: true });
    await mkdir(join(stateDir, "upper"), { recursive: true });
    // Where READs can be spliced from a file (the addon has spliceReply), blocks on this host are
    // opened, not read into memory: their bytes go from the server's file to the kernel in one copy.
    // SILO_FUSE_SPLICE=off: read into memory and copied (as before splicing; benchmarks compare).
    const splice = typeof fuseFdAddonIfBuilt()?.spliceReply === "function" && process.env.SILO_FUSE_SPLICE !== "off";
    cache = new BlockCache(join(stateDir, "cache"), opts.cacheBytes, localFirst(remote), { openLocal: splice ? localOpen(remote) : undefined });
    await cache.init();
    // Whole-file copies of committed files, for passthrough (whole-files.ts): read-only mounts
    // only, where no writer can join a passthrough period and map the copy.
    if (opts.readOnly && !opts.consistency && process.env.SILO_WHOLE_FILE_CACHE !== "off") {
      wholeFiles = new WholeFiles(join(stateDir, "whole"), cache, log);
      await wholeFiles.init();
    }
    // Writable mounts keep their changes in a journal that outlives the daemon (see journal.ts).
    const volumeDir = volumeJournalDir(opts.journalRoot ?? journalRoot(), opts.server ?? "", remote.id);
    let mvRef: MountedVolume | undefined;
    if (!opts.readOnly && !opts.consistency && opts.server) {
      journal = await Journal.create(
        volumeDir,
        { server: opts.server, volumeId: remote.id, volume: remote.name, environment: opts.environment, mountPoint: dir },
        (p) => mvRef!.recordOf(p),
      );
    }
    const mv = new MountedVolume(remote, new ContentStore(journal?.upperDir ?? join(stateDir, "upper"), cache));
    mvRef = mv;
    mv.warn = log;
    mv.journalCompactBytes = compactBytes;
    mv.tree.cache.limit = inodeCache;
    mv.tree.collect = (globalThis as { gc?: () => void }).gc;
    // Pin the latest version before loading it, so GC keeps every block of the tree we serve
    // (later: the oldest version whose blocks files pending or open here refer to).
    const pinned = await remote.pinVersion();
    const versionPin = new MountPin(remote, pinned, mv, log);
    pin = versionPin;
    await mv.load(pinned.version);
    let recovered = 0;
    if (journal) {
      mv.attachJournal(journal);
      // Changes an earlier mount of this volume here could not commit (it died, or its server was away).
      const claims = await claimOrphans(volumeDir, journal.dir);
      if (claims.length > 0) {
        recovered = await mv.replay(claims);
        // The dead mount's pin may still hold the version its changes refer to: hold it from here on.
        await versionPin.sync();
        await journal.checkpoint(mv.ns.dirty);
        for (const c of claims) await rm(c.dir, { recursive: true, force: true });
        log(`recovered ${mv.pendingPaths} pending change(s) of ${claims.length} earlier mount(s) of this volume; committing them`);
      }
    }
    const cacheTtlMs = opts.consistency ? opts.consistency.kernelCacheSeconds * 1000 : KERNEL_CACHE_MS;
    const volumeFs = new VolumeFs(mv, { readOnly: opts.readOnly, cacheTtlMs, log });
    fuse = await mountFuse(
      dir,
      opts.consistency ? opts.consistency.wrap(volumeFs, mv, log) : volumeFs,
      { fsname: "silo-volume", subtype: "silo", allowOther: true, defaultPermissions: true, mkdir: true, maxRead: Number(process.env.SILO_FUSE_MAX_READ) || (splice ? SPLICED_MAX_READ : undefined) },
      // Passthrough serves files whose bytes are local: upper files, or whole-file copies on a
      // read-only mount; not with close-to-open consistency, whose catch-ups may point an open
      // inode at new bytes.
      {
        errno: volumeErrno,
        opTimeoutMs: 120_000,
        handleKillpriv: true,
        lendWriteBuffers: true,
        passthrough: !opts.consistency && (!opts.readOnly || wholeFiles !== undefined),
        log: (m) => log(`fuse: ${m}`),
      },
    );
    const mounted = fuse;
    volumeFs.kernel = fuse.session;
    volumeFs.passthrough.backing = fuse.session.backing;
    volumeFs.passthrough.wholeFiles = wholeFiles;
    const access = mountAccessNote(fuse);
    if (access) log(access);

    let daemon: ServingDaemon | undefined;
    control = await serveControl(socket, async (op) => {
      switch (op) {
        case "commit":
          if (opts.readOnly) return { version: mv.viewVersion, changes: 0 };
          // A server restarting meanwhile is waited out (the caller's commit() should not fail on it).
          return mv.commit({ retryForMs: 60_000, log }).finally(() => void versionPin.sync());
        case "reload": {
          const r = await mv.reload().finally(() => void versionPin.sync());
          // The kernel may hold names and attributes of the old tree: drop them before
          // answering, so the caller sees the new version everywhere at once.
          if (r.changed) await volumeFs.invalidateAfterReload(mounted.session);
          return { version: r.version };
        }
        case "status":
          return {
            ...mv.status(),
            pinnedVersion: versionPin.version,
            dir,
            readOnly: opts.readOnly,
            cacheBytes: cache!.sizeBytes,
            cache: cache!.stats(),
            kernelInodes: volumeFs.inodeNumbers,
            // The JS heap in use (the inode cache's share of memory; RSS also keeps what V8 has not given back).
            heapUsedBytes: process.memoryUsage().heapUsed,
            passthrough: volumeFs.passthrough.stats,
            wholeFiles: wholeFiles?.stats ?? null,
            commits: { ...mv.commitStats },
            journal: journal?.dir ?? null,
            // FUSE requests served so far, by opcode (benchmarks count them per operation).
            fuseRequests: Object.fromEntries(mounted.session.stats.requests),
            // READ replies spliced from a file, and file slices sent by copying instead.
            fuseReplies: { spliced: mounted.session.stats.splicedReplies, copied: mounted.session.stats.copiedSlices },
          };
        case "unmount":
          setImmediate(() => daemon?.stop("unmount requested"));
          return {};
        default:
          throw Object.assign(new Error(`unknown control op '${op}'`), { code: "INVALID" });
      }
    });
    const info: MountInfo = {
      pid: process.pid,
      dir,
      socket,
      volume: remote.name,
      volumeId: remote.id,
      readOnly: opts.readOnly,
      version: mv.viewVersion,
      journal: journal?.dir ?? null,
    };

    const backgroundCommit = () => {
      if (mv.status().dirtyPaths === 0 || mv.committing) return;
      mv.commit()
        .finally(() => void versionPin.sync())
        .catch((err: Error) => log(`background commit failed (changes stay in the journal; will retry): ${err.message}`));
    };
    const background = !opts.readOnly && opts.commitIntervalMs > 0 ? setInterval(backgroundCommit, opts.commitIntervalMs) : undefined;
    // Changes not yet followed by a close or fsync reach the journal within a second too
    // (SILO_JOURNAL_FLUSH_MS; tests stretch it to hold that window open).
    // Said once, not every second: on a full disk each line takes space the journal needs.
    let journalFailing = false;
    const flushJournal = () =>
      mv.flush().then(
        () => {
          if (journalFailing) log("the journal is written again");
          journalFailing = false;
        },
        (err: Error) => {
          if (!journalFailing) log(`journal write failed (close and fsync fail until it can be written): ${err.message}`);
          journalFailing = true;
        },
      );
    const journalFlush = journal ? setInterval(() => void flushJournal(), flushMs) : undefined;
    if (recovered > 0) setImmediate(backgroundCommit);

    // Also after an outside `fusermount -u`: the journal still holds the changes to commit.
    async function shutdown(): Promise<number> {
      clearInterval(background);
      clearInterval(journalFlush);
      let code = 0;
      let failure: Error | undefined;
      const finalCommit = async () => {
        try {
          const r = await mv.commit({ retryForMs: opts.finalCommitRetryMs ?? 60_000, log });
          if (r.changes) log(`final commit: version ${r.version}`);
        } catch (err) {
          failure = err as Error;
        }
      };
      if (!opts.readOnly) await finalCommit();
      await mounted.unmount();
      // Writes that landed between the final commit and the unmount.
      if (!opts.readOnly && !failure && mv.pendingPaths > 0) await finalCommit();
      if (journal) {
        if (!failure && mv.pendingPaths === 0) {
          await journal.remove();
        } else {
          // A full disk: it holds at least what close(2) and fsync(2) acknowledged, and the message below must still go out.
          await journal.close().catch((err: Error) => log(`the journal could not take the last changes: ${err.message}`));
          const what = remote.name ?? remote.id;
          log(
            `final commit FAILED: ${failure?.message ?? "changes remain"}. ${mv.pendingPaths} changed path(s) are kept on this machine in ${journal.dir}; ` +
              `they are committed by the next mount of volume '${what}' here, or now by 'silo volume recover ${what}'`,
          );
          code = 1;
        }
      }
      await versionPin.stop();
      control?.close();
      await cache?.close();
      await wholeFiles?.close();
      await rm(stateDir, { recursive: true, force: true });
      // A background mount logs to <stateDir>.log: keep it only when something went wrong.
      if (code === 0) await rm(`${stateDir}.log`, { force: true });
      return code;
    }

    daemon = await serveUntilStopped({
      record: {
        mountPoint: dir,
        kind: opts.consistency?.kind ?? "volume",
        source: `${opts.consistency?.kind ?? "volume"} ${remote.name ?? remote.id}`,
        volumeId: remote.id,
        volumeName: remote.name,
        environment: opts.environment,
        readOnly: opts.readOnly,
        socket,
        journal: journal?.dir ?? null,
        jobMount: opts.exitWithParent ?? false,
      },
      shutdown,
      exitWithParent: opts.exitWithParent,
      log,
    });
    reportToParent({ ...info, ready: true });
    log(`mounted ${remote.name ?? remote.id} version ${mv.viewVersion} at ${dir}${opts.readOnly ? " (read-only)" : ""}`);
    return await daemon.done;
  } catch (err) {
    reportToParent({ error: (err as Error).message });
    if (fuse) await fuse.unmount();
    await pin?.stop();
    control?.close();
    await cache?.close().catch(() => {});
    await wholeFiles?.close().catch(() => {});
    // Nothing was accepted yet unless orphans were adopted: then the journal keeps them for the next try.
    await journal?.close().catch(() => {});
    throw err;
  }
}

/**
 * A whole number from the daemon's environment, or `fallback` when unset: the journal's periods
 * and sizes (`SILO_JOURNAL_FLUSH_MS`, default 1 s; `SILO_JOURNAL_COMPACT_BYTES`, default 32 MiB),
 * which tests shrink or stretch to hold a window open.
 */
function envInteger(name: string, fallback: number, min: number, max: number, env: NodeJS.ProcessEnv): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, not '${raw}'`);
  return n;
}
