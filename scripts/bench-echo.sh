#!/usr/bin/env bash
# Compares examples/echo-server with peer echo servers (raw mio, tokio
# current_thread, may, thread-per-connection, gevent) under the same load.
#
# Usage: scripts/bench-echo.sh HARNESS_DIR [run-echo.sh options...]
#
# HARNESS_DIR is a checkout of the echo benchmark harness: the directory with
# run-echo.sh, the peer servers and the echo-load generator. Servers run on
# CPU 0, the load on CPU 1. Examples:
#   scripts/bench-echo.sh ../bench --repeat 3                 # 100 conns, 64 B ping-pong
#   scripts/bench-echo.sh ../bench --repeat 3 --pipeline 16   # 16 messages in flight per connection
#   scripts/bench-echo.sh ../bench --idle 10000               # memory per idle connection
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
harness="${1:?usage: scripts/bench-echo.sh HARNESS_DIR [run-echo.sh options...]}"
shift
cargo build --release --manifest-path "$here/Cargo.toml" --example echo-server
cd "$harness"
exec ./run-echo.sh "$@" --extra "ours=$here/target/release/examples/echo-server --addr {addr}"
