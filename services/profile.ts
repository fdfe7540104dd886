import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuthStore } from "./auth/store.js";

/** The client profile `silo serve` writes for the local user: where the server is and a token for it. */
export interface Profile {
  serverUrl: string;
  tokenId: string;
  tokenSecret: string;
}

export const profilePath = (home: string) => join(home, "config.json");

function readProfile(home: string): Partial<Profile> {
  const file = profilePath(home);
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Partial<Profile>;
  } catch {
    return {};
  }
}

/**
 * First start creates the `default` workspace and an admin token; every start (re)writes the
 * profile with the URL actually listened on, keeping a token that still works.
 */
export function writeLocalProfile(home: string, auth: AuthStore, serverUrl: string): Profile {
  if (auth.workspaceCount() === 0) {
    const ws = auth.createWorkspace("default");
    const token = auth.issueToken(ws.id, "admin (created by silo serve)", true);
    return saveProfile(home, { serverUrl, ...token });
  }
  const old = readProfile(home);
  const valid = old.tokenId && old.tokenSecret && auth.verify(old.tokenId, old.tokenSecret);
  if (valid) return saveProfile(home, { serverUrl, tokenId: old.tokenId!, tokenSecret: old.tokenSecret! });
  // Profile lost or its token revoked: issue a fresh admin token for the first workspace.
  const first = auth.firstWorkspaceId();
  return saveProfile(home, { serverUrl, ...auth.issueToken(first, "admin (re-issued by silo serve)", true) });
}

function saveProfile(home: string, profile: Profile): Profile {
  const file = profilePath(home);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return profile;
}
