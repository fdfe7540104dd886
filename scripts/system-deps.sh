#!/usr/bin/env bash
# Installs the Debian packages silo's tests, benchmarks and FUSE mounts need, if missing.
# fuse3: fusermount3 (mounts and unmounts by users who are not root); silo speaks the FUSE protocol itself (fuse/kernel).
# Idempotent and quiet when everything is there; needs root (CI runs as root).
#   fuse3 (fusermount3), redis-server (bench:dict's peer), rsync, sqlite3,
#   git (tools the mount tests run on a mount), python3 (the POSIX mount tests' system calls), chromium (the dashboard and API reference tests),
#   and the S3 server's Swift + memcached (scripts/s3-server.sh install), so that no test hook
#   waits for apt on a fresh machine.
set -euo pipefail
want=(fuse3 redis-server rsync sqlite3 git chromium python3)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "Installing system packages: ${missing[*]}" >&2
  # Another apt run (s3-server.sh, a parallel job) may hold the lock: wait for it. `env` because
  # sudo drops DEBIAN_FRONTEND from the environment.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Users mount FUSE through fusermount3, which opens /dev/fuse as the user: Debian's udev rule
# makes it 0666, but a container's /dev (no udev) often has it 0600. Do what the rule does.
if [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ] && [ "$(id -u)" -eq 0 ]; then
  chmod 0666 /dev/fuse
fi
bash "$(dirname "$0")/s3-server.sh" install
