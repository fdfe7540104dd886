import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "../..");
export const SILO_BIN = join(REPO, "bin/silo.js");
