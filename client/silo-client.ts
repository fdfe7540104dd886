import { EnvironmentService, TokenService, type WhoAmI, WorkspaceService, whoami } from "./admin.js";
import { CloudBucketMountService } from "./cloud-bucket-mount.js";
import { type ClientConfig, resolveConfig } from "./config.js";
import { DictService } from "./dict.js";
import { NetworkFileSystemService } from "./network-file-system.js";
import type { EnvironmentOption } from "./object-service.js";
import { QueueService } from "./queue.js";
import { SecretService } from "./secret.js";
import { Transport } from "./transport.js";
import { VolumeService } from "./volume.js";

export type SiloClientOptions = Partial<ClientConfig>;

/**
 * The entry point a job imports: `const silo = new SiloClient()` reads its config from the
 * environment (`SILO_SERVER_URL`, `SILO_TOKEN_ID`, `SILO_TOKEN_SECRET`, `SILO_ENVIRONMENT`)
 * or the local profile, then each storage kind hangs off it (`silo.dicts`, `silo.queues`, …).
 */
export class SiloClient implements AsyncDisposable {
  readonly config: ClientConfig;
  readonly workspaces: WorkspaceService;
  readonly tokens: TokenService;
  readonly environments: EnvironmentService;
  readonly dicts: DictService;
  /** Partitioned FIFO queues: `silo.queues.fromName<T>(name, { createIfMissing: true })`. */
  readonly queues: QueueService;
  readonly volumes: VolumeService;
  /** Shared directories without commit/reload: `silo.networkFileSystems.fromName(name, { createIfMissing: true })`. */
  readonly networkFileSystems: NetworkFileSystemService;
  readonly secrets: SecretService;
  readonly cloudBucketMounts: CloudBucketMountService;
  protected readonly transport: Transport;

  constructor(options: SiloClientOptions = {}) {
    this.config = resolveConfig(options);
    this.transport = new Transport(this.config);
    this.workspaces = new WorkspaceService(this.transport);
    this.tokens = new TokenService(this.transport);
    this.environments = new EnvironmentService(this.transport);
    this.dicts = new DictService(this.transport);
    this.queues = new QueueService(this.transport);
    this.volumes = new VolumeService(this.transport);
    this.networkFileSystems = new NetworkFileSystemService(this.transport);
    this.secrets = new SecretService(this.transport);
    this.cloudBucketMounts = new CloudBucketMountService();
  }

  /** Which workspace, token and environment this client acts as. */
  whoami(opts: EnvironmentOption = {}): Promise<WhoAmI> {
    return whoami(this.transport, opts);
  }

  /** Closes the connection pool. */
  close(): Promise<void> {
    return this.transport.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
