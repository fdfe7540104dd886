#!/usr/bin/env bash
# Builds native/fuse-fd (the addon that receives the /dev/fuse fd from fusermount3, see
# fuse/kernel/fusermount.ts) with node-gyp against this machine's Node headers: nothing is
# downloaded. Incremental (make): a no-op when the addon is up to date. Run by `npm install`.
set -euo pipefail
cd "$(dirname "$0")/../native/fuse-fd"
nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "build-native: no Node headers in $nodedir/include/node (they come with Node's own package)" >&2
  exit 1
fi
# npm puts its bundled node-gyp on PATH for scripts; outside npm, use the global npm's copy.
if command -v node-gyp >/dev/null; then gyp=(node-gyp); else gyp=(node "$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"); fi
[ build/Makefile -nt binding.gyp ] || "${gyp[@]}" configure --nodedir="$nodedir" --loglevel=warn
"${gyp[@]}" build --loglevel=warn >/dev/null
