#!/usr/bin/env bash
# Checks examples/ws-echo with a client nobody here wrote: Python's
# `websockets` package (installed with pip when missing), 200 concurrent
# clients sending text and binary messages, pinging, and closing cleanly.
#
# Usage: scripts/check-ws-echo.sh    (environment: PORT, default 7080; CLIENTS, default 200)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${PORT:-7080}"
clients="${CLIENTS:-200}"

if ! python3 -c 'import websockets.asyncio.client' 2>/dev/null; then
    python3 -m pip install --quiet 'websockets>=13'
fi
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --example ws-echo

log="$(mktemp)"
"$here/target/release/examples/ws-echo" --addr "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    grep -q listening "$log" && break
    sleep 0.1
done
grep -q listening "$log" || { cat "$log" >&2; exit 1; }

python3 "$here/scripts/check_ws_echo.py" "ws://127.0.0.1:$port/" --clients "$clients"
echo "WebSocket echo: all checks passed"
