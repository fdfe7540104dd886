export * from "./admin.js";
export * from "./cloud-bucket-mount.js";
export { type ClientConfig, resolveConfig } from "./config.js";
export * from "./errors.js";
export { type ObjectRecord, SiloObject } from "./object.js";
export * from "./object-service.js";
export * from "./secret.js";
export { SiloClient, type SiloClientOptions } from "./silo-client.js";
