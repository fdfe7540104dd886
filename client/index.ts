export * from "./admin.js";
export { type ClientConfig, resolveConfig } from "./config.js";
export * from "./errors.js";
export { type ObjectRecord, SiloObject } from "./object.js";
export * from "./object-service.js";
export { SiloClient, type SiloClientOptions } from "./silo-client.js";
export * from "./volume.js";
export * from "./volume-protocol.js";
export { type UploadBatchOptions, type UploadSource, VolumeUploadBatch } from "./volume-upload.js";
