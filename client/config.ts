import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { AuthError } from "../protocol/errors.js";

/** How a client finds and authenticates to a silo server. */
export interface ClientConfig {
  serverUrl: string;
  tokenId: string;
  tokenSecret: string;
  /** Environment for every call that does not name one (default `main`). */
  environment: string;
}

export const DEFAULT_SERVER_URL = "http://127.0.0.1:7070";

/**
 * Resolves the config: explicit options, then `SILO_SERVER_URL` / `SILO_TOKEN_ID` /
 * `SILO_TOKEN_SECRET` / `SILO_ENVIRONMENT`, then the profile `silo serve` wrote at
 * `$SILO_HOME/config.json` (default `~/.silo`).
 */
export function resolveConfig(overrides: Partial<ClientConfig> = {}): ClientConfig {
  const env = process.env;
  const home = env.SILO_HOME || join(homedir(), ".silo");
  let profile: Partial<ClientConfig> = {};
  try {
    profile = JSON.parse(readFileSync(join(home, "config.json"), "utf8")) as Partial<ClientConfig>;
  } catch {
    // No profile: env vars or options must say everything.
  }
  const config = {
    serverUrl: overrides.serverUrl ?? env.SILO_SERVER_URL ?? profile.serverUrl ?? DEFAULT_SERVER_URL,
    tokenId: overrides.tokenId ?? env.SILO_TOKEN_ID ?? profile.tokenId,
    tokenSecret: overrides.tokenSecret ?? env.SILO_TOKEN_SECRET ?? profile.tokenSecret,
    environment: overrides.environment ?? (env.SILO_ENVIRONMENT || undefined) ?? profile.environment ?? "main",
  };
  if (!config.tokenId || !config.tokenSecret) {
    throw new AuthError(
      `No silo credentials: set SILO_TOKEN_ID and SILO_TOKEN_SECRET, or run 'silo serve' once to create ${join(home, "config.json")}`,
      "AUTH",
    );
  }
  return config as ClientConfig;
}
