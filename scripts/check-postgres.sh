#!/usr/bin/env bash
# Runs examples/postgres against a real PostgreSQL server: a throwaway
# cluster (initdb into a temporary directory, trust authentication, loopback
# only) started with pg_ctl on a free port, and removed afterwards. Installs
# Debian's `postgresql` package when no server is installed (needs root).
#
# Usage: scripts/check-postgres.sh    (environment: CLIENTS, default 8)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
bin="$(find_bin)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "installing PostgreSQL (Debian's postgresql package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    bin="$(find_bin)"
fi

# PostgreSQL refuses to run as root: as root, run it as the package's
# `postgres` user.
as_db_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

work="$(mktemp -d)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
started=""
cleanup() {
    if [ -n "$started" ]; then
        as_db_user "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

as_db_user "$bin/initdb" -D "$work/data" -A trust -U postgres >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
as_db_user "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$work/server.log" >&2; exit 1; }
started=1
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

cargo build --release --quiet --manifest-path "$here/Cargo.toml" --features tokio-io --example postgres
"$here/target/release/examples/postgres" --addr "127.0.0.1:$port" --user postgres --clients "${CLIENTS:-8}"
