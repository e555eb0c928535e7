#!/usr/bin/env bash
# Runs OpenStack Keystone from Debian (package keystone) standalone, as the
# incumbent that Strata's identity benchmark compares against:
#   - an SQLite database under DIR, created with keystone-manage db_sync and
#     filled with keystone-manage bootstrap (the admin user, project and
#     role, the identity service and its endpoints in RegionOne);
#   - Fernet tokens (Keystone's default), with the key repositories under DIR;
#   - the WSGI application /usr/bin/keystone-wsgi-public under uwsgi, as
#     Debian's init script runs it (Debian's keystone-uwsgi.ini with
#     --http-socket), on a loopback port the caller chooses, with everything
#     (config, database, keys, logs, pid file) under DIR.
#
# Usage:
#   scripts/keystone-standalone.sh install
#       installs keystone if it is missing (idempotent; the service is not
#       started).
#   scripts/keystone-standalone.sh start DIR PORT
#       installs if needed, writes DIR/keystone.conf, creates
#       DIR/keystone.sqlite and the Fernet keys, bootstraps the admin,
#       starts Keystone on 127.0.0.1:PORT, waits until GET /v3 answers, and
#       writes DIR/keystone.pid.
#   scripts/keystone-standalone.sh stop DIR
#       stops the processes named in DIR/*.pid (TERM, then KILL).
#
# Environment: KEYSTONE_BOOTSTRAP_PASSWORD (the admin's password; if unset,
# one is made up and written to DIR/admin-password), KEYSTONE_PROCESSES
# (uwsgi processes, default: 2 per core, as Debian's ini advises),
# KEYSTONE_START_TIMEOUT (seconds, default 120), KEYSTONE_CACHE_BACKEND
# (an oslo.cache backend, such as dogpile.cache.memory, for Keystone's cache
# across requests; default none, as Debian ships it).
set -euo pipefail

die() { echo "keystone-standalone: $*" >&2; exit 1; }

install_keystone() {
  local missing=() p
  for p in keystone uwsgi-plugin-python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "keystone-standalone: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # The package's maintainer scripts would start the service with Debian's
  # defaults (port 5000 on every address): forbid that while installing,
  # unless a policy already does.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -q || rc=$?
  fi
  if [ $rc -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 \
      install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  fi
  [ -n "$made_policy" ] && $sudo rm -f "$policy"
  [ $rc -eq 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

write_config() {
  local dir=$1 port=$2
  # Every path Keystone would take from /etc/keystone or /var/*/keystone
  # points into DIR; the rest are Keystone's defaults (bcrypt with 12
  # rounds, Fernet tokens valid 1h). Its cache stays as Debian leaves it:
  # Keystone turns [cache] enabled on by default, with the null backend,
  # which still caches within a request; writing "enabled = false" (what
  # one might take for the default) turns that off too and makes every
  # validation several times slower.
  local cache=""
  if [ -n "${KEYSTONE_CACHE_BACKEND:-}" ]; then
    cache=$(printf 'enabled = true\nbackend = %s' "$KEYSTONE_CACHE_BACKEND")
  fi
  cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_dir = $dir
log_file = keystone.log
use_stderr = false
debug = false

[cache]
$cache

[catalog]
template_file = /etc/keystone/default_catalog.templates

[credential]
key_repository = $dir/credential-keys

[database]
# SQLAlchemy 1.4 gives SQLite files a NullPool; Keystone leaves some
# connections to the garbage collector, which closes them in another of
# uwsgi's threads, and pysqlite's same-thread check then logs an ERROR with
# a traceback for each (several per request): let any thread close them.
connection = sqlite:///$dir/keystone.sqlite?check_same_thread=false

[federation]
sso_callback_template = /etc/keystone/sso_callback_template.html

[fernet_receipts]
key_repository = $dir/fernet-keys

[fernet_tokens]
key_repository = $dir/fernet-keys

[oslo_concurrency]
lock_path = $dir/lock

[oslo_policy]
policy_dirs = /etc/keystone/policy.d
EOF

  # Debian's uwsgi settings, with this instance's paths and port. Dropped:
  # the apparmor profile (Debian's is in complain mode, and this kernel may
  # have no AppArmor), the keystone user (the keys and the database belong
  # to root here), and paste-logger (it takes the logging setup of a paste
  # file, and there is none: Keystone logs to DIR/keystone.log itself).
  local procs=${KEYSTONE_PROCESSES:-$(( $(nproc) * 2 ))}
  grep -v -E '^\s*(logto|uid|gid|chdir|wsgi-file|processes|name|http-socket|https-socket|plugins|apparmor-profile|paste-logger)\s*=' \
    /etc/keystone/keystone-uwsgi.ini >"$dir/keystone-uwsgi.ini"
  cat >>"$dir/keystone-uwsgi.ini" <<EOF

# keystone-standalone.sh
plugins = python3
name = keystone-api
processes = $procs
http-socket = 127.0.0.1:$port
chdir = $dir
logto = $dir/keystone-uwsgi.log
wsgi-file = /usr/bin/keystone-wsgi-public
# keystone-wsgi-public reads its configuration from this directory.
env = OS_KEYSTONE_CONFIG_DIR=$dir
EOF
}

manage() {
  local dir=$1 step=$2
  shift 2
  if ! keystone-manage --config-file "$dir/keystone.conf" --log-file "$dir/keystone-manage.log" "$@" \
    >>"$dir/keystone-manage.out" 2>&1; then
    tail -n 40 "$dir/keystone-manage.out" "$dir/keystone-manage.log" >&2 2>/dev/null || true
    die "keystone-manage $step failed (logs in $dir)"
  fi
}

start() {
  [ $# -eq 2 ] || die "usage: $0 start DIR PORT"
  local dir port=$2
  mkdir -p "$1"
  dir=$(cd "$1" && pwd)
  if [ -f "$dir/keystone.pid" ] && alive "$(cat "$dir/keystone.pid")"; then
    die "keystone already runs from $dir (pid $(cat "$dir/keystone.pid")); stop it first"
  fi
  install_keystone
  local password=${KEYSTONE_BOOTSTRAP_PASSWORD:-}
  if [ -z "$password" ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    (umask 077 && printf '%s\n' "$password" >"$dir/admin-password")
  fi
  mkdir -p "$dir/lock"
  write_config "$dir" "$port"

  rm -rf "$dir/keystone.sqlite" "$dir/fernet-keys" "$dir/credential-keys"
  : >"$dir/keystone-manage.out"
  manage "$dir" db_sync db_sync
  manage "$dir" fernet_setup fernet_setup --keystone-user root --keystone-group root
  manage "$dir" credential_setup credential_setup --keystone-user root --keystone-group root
  local url="http://127.0.0.1:$port/v3"
  # The password goes through the environment, not the command line that
  # every user of the machine can read.
  OS_BOOTSTRAP_PASSWORD=$password manage "$dir" bootstrap bootstrap \
    --bootstrap-admin-url "$url" --bootstrap-public-url "$url" \
    --bootstrap-internal-url "$url" --bootstrap-region-id RegionOne

  local uwsgi=""
  for b in /usr/bin/uwsgi_python3 /usr/bin/uwsgi_python311 /usr/bin/uwsgi; do
    [ -x "$b" ] && { uwsgi=$b; break; }
  done
  [ -n "$uwsgi" ] || die "no uwsgi binary (package uwsgi-plugin-python3)"

  # In its own session, so that a signal to the caller's terminal does not
  # reach it; stop() ends it by its pid (the uwsgi master, which takes its
  # workers with it: die-on-term and no-orphans in Debian's ini).
  setsid "$uwsgi" --ini "$dir/keystone-uwsgi.ini" </dev/null >"$dir/keystone.out" 2>&1 &
  echo $! >"$dir/keystone.pid"

  local timeout=${KEYSTONE_START_TIMEOUT:-120} t0=$SECONDS
  while :; do
    if curl -fsS -m 5 "$url" 2>/dev/null | grep -q '"id": *"v3'; then
      echo "keystone-standalone: $url (pid $(cat "$dir/keystone.pid")), in $dir"
      return 0
    fi
    if ! alive "$(cat "$dir/keystone.pid")"; then
      tail -n 40 "$dir/keystone.out" "$dir/keystone-uwsgi.log" "$dir/keystone.log" 2>/dev/null >&2 || true
      stop "$dir" || true
      die "keystone exited at start (logs in $dir)"
    fi
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      tail -n 40 "$dir/keystone.out" "$dir/keystone-uwsgi.log" "$dir/keystone.log" 2>/dev/null >&2 || true
      stop "$dir" || true
      die "keystone did not answer GET $url within ${timeout}s (logs in $dir)"
    fi
    sleep 0.5
  done
}

stop() {
  [ $# -eq 1 ] || die "usage: $0 stop DIR"
  local dir=$1 f pid
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
      # The master leads its own process group (setsid): KILL takes the
      # workers too.
      if alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
  done
}

case "${1:-}" in
  install) install_keystone ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) die "usage: $0 install | start DIR PORT | stop DIR" ;;
esac
