export * from "./admin.js";
export { type ClientConfig, resolveConfig } from "./config.js";
export * from "./errors.js";
export { type ObjectRecord, SiloObject } from "./object.js";
export * from "./object-service.js";
export * from "./queue.js";
export { SiloClient, type SiloClientOptions } from "./silo-client.js";
