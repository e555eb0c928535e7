#!/usr/bin/env bash
# Runs OpenStack Ironic from Debian (ironic-api, ironic-conductor) standalone,
# as the incumbent that Strata's benchmarks compare against:
#   - no Keystone (auth_strategy=noauth), no RabbitMQ (rpc_transport=json-rpc),
#     an SQLite database created with ironic-dbsync;
#   - only the fake-hardware hardware type, with the fake interfaces, so that
#     nodes walk manage, provide (cleaning) and deploy with no agent and no BMC;
#   - the API under uwsgi as Debian runs it (Debian's ironic-api-uwsgi.ini),
#     the conductor as ironic-conductor; both on loopback ports the caller
#     chooses, everything (config, database, logs, pid files) under DIR.
#
# Usage:
#   scripts/ironic-standalone.sh install
#       installs ironic-api and ironic-conductor if they are missing
#       (idempotent; services are not started).
#   scripts/ironic-standalone.sh start DIR API_PORT RPC_PORT
#       installs if needed, writes DIR/ironic.conf, creates DIR/ironic.sqlite,
#       starts the API on 127.0.0.1:API_PORT and the conductor (JSON-RPC on
#       127.0.0.1:RPC_PORT), waits until the API lists fake-hardware, and
#       writes DIR/api.pid and DIR/conductor.pid.
#   scripts/ironic-standalone.sh stop DIR
#       stops the processes named in DIR/*.pid (TERM, then KILL).
#
# Environment: IRONIC_API_PROCESSES (uwsgi processes, default: 2 per core,
# as Debian's ini advises), IRONIC_START_TIMEOUT (seconds, default 120).
set -euo pipefail

die() { echo "ironic-standalone: $*" >&2; exit 1; }

install_ironic() {
  local missing=() p
  for p in ironic-api ironic-conductor uwsgi-plugin-python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "ironic-standalone: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # The packages' maintainer scripts would start the services with
  # Debian's defaults (port 6385 on every address): forbid that while
  # installing, unless a policy already does.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    $sudo apt-get update -q || rc=$?
  fi
  if [ $rc -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  fi
  [ -n "$made_policy" ] && $sudo rm -f "$policy"
  [ $rc -eq 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

write_config() {
  local dir=$1 api_port=$2 rpc_port=$3
  cat >"$dir/ironic.conf" <<EOF
[DEFAULT]
auth_strategy = noauth
rpc_transport = json-rpc
# The conductor's name is where the API reaches its JSON-RPC server.
host = 127.0.0.1
state_path = $dir
log_dir = $dir
use_stderr = false
debug = false
enabled_hardware_types = fake-hardware
enabled_bios_interfaces = fake,no-bios
enabled_boot_interfaces = fake
enabled_console_interfaces = fake,no-console
enabled_deploy_interfaces = fake
enabled_inspect_interfaces = fake,no-inspect
enabled_management_interfaces = fake
enabled_network_interfaces = noop
enabled_power_interfaces = fake
enabled_raid_interfaces = fake,no-raid
enabled_rescue_interfaces = fake,no-rescue
enabled_storage_interfaces = noop,fake
enabled_vendor_interfaces = fake,no-vendor
default_network_interface = noop

[api]
host_ip = 127.0.0.1
port = $api_port

[conductor]
# Ironic's default: provide runs (fake) automated cleaning, as Strata's does.
automated_clean = true

[database]
connection = sqlite:///$dir/ironic.sqlite

[dhcp]
dhcp_provider = none

[json_rpc]
auth_strategy = noauth
host_ip = 127.0.0.1
port = $rpc_port

[oslo_concurrency]
lock_path = $dir/lock

[oslo_policy]
policy_dirs = /etc/ironic/policy.d
EOF

  # Debian's uwsgi settings for the API, with this instance's paths and port.
  local procs=${IRONIC_API_PROCESSES:-$(( $(nproc) * 2 ))}
  grep -v -E '^\s*(logto|uid|gid|chdir|wsgi-file|processes|name|http-socket|pyargv)\s*=' \
    /etc/ironic/ironic-api-uwsgi.ini >"$dir/ironic-api-uwsgi.ini"
  cat >>"$dir/ironic-api-uwsgi.ini" <<EOF

# ironic-standalone.sh
name = ironic-api
processes = $procs
http-socket = 127.0.0.1:$api_port
chdir = $dir
logto = $dir/ironic-api.log
wsgi-file = /usr/bin/ironic-api-wsgi
pyargv = --config-file $dir/ironic.conf
EOF
}

start() {
  [ $# -eq 3 ] || die "usage: $0 start DIR API_PORT RPC_PORT"
  local dir api_port=$2 rpc_port=$3
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  for f in api conductor; do
    if [ -f "$dir/$f.pid" ] && alive "$(cat "$dir/$f.pid")"; then
      die "ironic $f already runs from $dir (pid $(cat "$dir/$f.pid")); stop it first"
    fi
  done
  install_ironic
  mkdir -p "$dir/lock"
  write_config "$dir" "$api_port" "$rpc_port"

  rm -f "$dir/ironic.sqlite"
  if ! ironic-dbsync --config-file "$dir/ironic.conf" create_schema >"$dir/dbsync.log" 2>&1; then
    cat "$dir/dbsync.log" >&2
    die "ironic-dbsync create_schema failed"
  fi

  local uwsgi=""
  for b in /usr/bin/uwsgi_python3 /usr/bin/uwsgi_python311 /usr/bin/uwsgi; do
    [ -x "$b" ] && { uwsgi=$b; break; }
  done
  [ -n "$uwsgi" ] || die "no uwsgi binary (package uwsgi-plugin-python3)"

  # Each server in its own session, so that a signal to the caller's
  # terminal does not reach it; stop() ends it by its pid.
  setsid ironic-conductor --config-file "$dir/ironic.conf" \
    </dev/null >"$dir/conductor.out" 2>&1 &
  echo $! >"$dir/conductor.pid"
  setsid "$uwsgi" --ini "$dir/ironic-api-uwsgi.ini" </dev/null >"$dir/api.out" 2>&1 &
  echo $! >"$dir/api.pid"

  local timeout=${IRONIC_START_TIMEOUT:-120} t0=$SECONDS
  local url="http://127.0.0.1:$api_port/v1/drivers"
  while :; do
    if curl -fsS -m 5 -H 'X-OpenStack-Ironic-API-Version: 1.31' "$url" 2>/dev/null | grep -q '"fake-hardware"'; then
      echo "ironic-standalone: API http://127.0.0.1:$api_port (pid $(cat "$dir/api.pid")), conductor pid $(cat "$dir/conductor.pid"), in $dir"
      return 0
    fi
    for f in api conductor; do
      if ! alive "$(cat "$dir/$f.pid")"; then
        tail -n 40 "$dir/$f.out" "$dir"/ironic-*.log 2>/dev/null >&2 || true
        stop "$dir" || true
        die "ironic $f exited at start (logs in $dir)"
      fi
    done
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      tail -n 40 "$dir/api.out" "$dir/conductor.out" "$dir"/ironic-*.log 2>/dev/null >&2 || true
      stop "$dir" || true
      die "ironic did not list fake-hardware at $url within ${timeout}s (logs in $dir)"
    fi
    sleep 0.5
  done
}

stop() {
  [ $# -eq 1 ] || die "usage: $0 stop DIR"
  local dir=$1 f pid
  for f in api conductor; do
    [ -f "$dir/$f.pid" ] || continue
    pid=$(cat "$dir/$f.pid")
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/$f.pid"
  done
}

case "${1:-}" in
  install) install_ironic ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) die "usage: $0 install | start DIR API_PORT RPC_PORT | stop DIR" ;;
esac
