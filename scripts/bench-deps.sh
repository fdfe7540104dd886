#!/usr/bin/env bash
# Installs the Debian packages only the benchmarks need (peers to compare against), if missing.
# bindfs: a C libfuse passthrough, the ceiling for a libfuse-based file system in bench:mount.
set -euo pipefail
want=(bindfs)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "Installing benchmark packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
