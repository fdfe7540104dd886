export * from "./admin.js";
export { type ClientConfig, resolveConfig } from "./config.js";
export { DICT_LIMITS, Dict, type DictInfo, DictService, type LockOptions, type PutOptions, type ScanOptions } from "./dict.js";
export { DictLease } from "./dict-lease.js";
export * from "./errors.js";
export { type ObjectRecord, SiloObject } from "./object.js";
export * from "./object-service.js";
export { SiloClient, type SiloClientOptions } from "./silo-client.js";
