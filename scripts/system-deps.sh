#!/usr/bin/env bash
# Installs the Debian packages silo's tests, benchmarks and FUSE mounts need, if missing.
# fuse3: fusermount3 (lazy unmounts of dead mounts by users); silo speaks the FUSE protocol itself (fuse/kernel).
# Idempotent and quiet when everything is there; needs root (CI runs as root).
set -euo pipefail
want=(fuse3 redis-server rsync sqlite3 git chromium)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "Installing system packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
