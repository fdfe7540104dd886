#!/usr/bin/env bash
# A real S3-compatible server on loopback for silo's tests and benchmarks: OpenStack Swift
# (Debian) with its s3api middleware, one replica, its own ports and data dir.
#
# usage: s3-server.sh install | start | stop | reset | status | env
#   install  apt-install Swift + memcached (start does it too when they are missing)
#   start    start it unless it is already up (idempotent; ~0.05 s when running, ~2-5 s cold)
#   stop     stop it (data kept)        reset  stop, wipe the data, start
#   status   exit 0 if up               env    print the AWS_* variables a client needs
#
# env: SILO_S3_DIR (default /tmp/silo-s3), SILO_S3_PORT (18080), SILO_S3_PORT_BASE (16200; uses
#      +0..+2), SILO_S3_MEMCACHED_PORT (11311)
# S3 credentials: access key "test:tester", secret "testing", region us-east-1, path-style.
# Quirks a client must handle (see docs/buckets.md): streamed bodies need
# requestChecksumCalculation=WHEN_REQUIRED; DeleteObjects needs Content-MD5; conditional PUT → 501.
set -euo pipefail
D=${SILO_S3_DIR:-/tmp/silo-s3}
PORT=${SILO_S3_PORT:-18080}
PB=${SILO_S3_PORT_BASE:-16200}
MCP=${SILO_S3_MEMCACHED_PORT:-11311}
URL="http://127.0.0.1:$PORT"
PKGS=(swift-proxy swift-object swift-container swift-account memcached curl)

# Up means the proxy *and* its three back ends answer: the proxy listens first, and a request it
# forwards to a back end not yet listening fails and counts towards that node's error limit.
healthy() {
  local u
  for u in "$URL" "http://127.0.0.1:$PB" "http://127.0.0.1:$((PB + 1))" "http://127.0.0.1:$((PB + 2))"; do
    curl -sf -m 2 "$u/healthcheck" >/dev/null 2>&1 || return 1
  done
}

install_pkgs() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing system packages: ${missing[*]}" >&2
  # Another apt run (system-deps.sh, a parallel job) may hold the lock: wait for it.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_conf() {
  mkdir -p "$D/etc" "$D/data/d1" "$D/run" "$D/log"
  cat > "$D/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = silo-test-suffix
swift_hash_path_prefix = silo-test-prefix
[storage-policy:0]
name = gold
default = yes
[swift-constraints]
max_file_size = 5368709122
CONF
  local i=0 n
  for n in object container account; do
    cat > "$D/etc/$n-server.conf" <<CONF
[DEFAULT]
swift_dir = $D/etc
devices = $D/data
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = $((PB + i))
workers = 0
user = $(id -un)
log_level = WARNING
[pipeline:main]
pipeline = healthcheck $n-server
[app:$n-server]
use = egg:swift#$n
[filter:healthcheck]
use = egg:swift#healthcheck
CONF
    if [ ! -f "$D/etc/$n.ring.gz" ]; then
      swift-ring-builder "$D/etc/$n.builder" create 8 1 1 >/dev/null
      swift-ring-builder "$D/etc/$n.builder" add "r1z1-127.0.0.1:$((PB + i))/d1" 100 >/dev/null
      swift-ring-builder "$D/etc/$n.builder" rebalance >/dev/null || true
    fi
    i=$((i + 1))
  done
  cat > "$D/etc/proxy-server.conf" <<CONF
[DEFAULT]
swift_dir = $D/etc
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 0
user = $(id -un)
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# One node holds everything: error-limiting it (by default after 10 errors, for 60 s) would turn
# a moment of overload into a minute of 503s. Timeouts are generous for a loaded CI machine.
error_suppression_limit = 1000000
conn_timeout = 5
node_timeout = 60
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false
min_segment_size = 5242880
max_multi_delete_objects = 1000
multi_delete_concurrency = 4
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MCP
CONF
  # Middlewares used as they come: a section naming the egg entry point is all they need.
  local f
  for f in catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk copy slo dlo versioned_writes symlink; do
    printf '[filter:%s]\nuse = egg:swift#%s\n' "$f" "${f//-/_}" >> "$D/etc/proxy-server.conf"
  done
}

start() {
  healthy && { echo "S3 endpoint $URL ready (already running)"; return 0; }
  install_pkgs
  stop_procs
  write_conf
  memcached -u "$(id -un)" -l 127.0.0.1 -p "$MCP" -m 64 -d -P "$D/run/memcached.pid" 9>&-
  local n
  for n in object container account proxy; do
    setsid "/usr/bin/swift-$n-server" "$D/etc/$n-server.conf" -v >"$D/log/$n.log" 2>&1 </dev/null 9>&- &
    echo $! >"$D/run/$n.pid"
  done
  for _ in $(seq 1 300); do
    healthy && { echo "S3 endpoint $URL ready"; return 0; }
    sleep 0.1
  done
  echo "Swift did not come up; logs in $D/log:" >&2
  tail -n 20 "$D"/log/*.log >&2
  return 1
}

stop_procs() {
  local n pid
  for n in proxy object container account memcached; do
    if [ -f "$D/run/$n.pid" ]; then
      pid=$(cat "$D/run/$n.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$D/run/$n.pid"
    fi
  done
}

# One caller at a time (parallel test files and benches share one server); the servers
# started below must not inherit the lock fd, or they would hold the lock forever.
mkdir -p "$D"
exec 9>"$D/.lock"
flock 9

case "${1:-}" in
  install) install_pkgs ;;
  start) start ;;
  stop) stop_procs ;;
  # memcached restarts too: its cached account/container info is stale after a wipe.
  reset) stop_procs; rm -rf "$D/data"; start ;;
  status) healthy ;;
  env) printf 'AWS_ENDPOINT_URL=%s\nAWS_ACCESS_KEY_ID=test:tester\nAWS_SECRET_ACCESS_KEY=testing\nAWS_REGION=us-east-1\n' "$URL" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
