#!/usr/bin/env bash
# What busy polling costs when the cores are oversubscribed: the echo server
# on 2 hubs with busy polling (the default, 50 us) and without it
# (--busy-poll 0), beside a CPU hog on every core, all under the same load.
#
# Usage: scripts/bench-busy-poll.sh HARNESS_DIR [--hogs N] [run-echo.sh options...]
#
# HARNESS_DIR is the echo benchmark harness (run-echo.sh, echo-load), as for
# scripts/bench-echo.sh. --hogs N starts N busy loops (default: one per core)
# for the whole run; --hogs 0 measures the same pair on an otherwise idle
# machine. Servers, hogs and the load generator share every core. Compare
# the two rows' msgs/s: busy polling should cost at most 5 % beside the hogs.
# Example:
#   scripts/bench-busy-poll.sh ../bench --repeat 5 --duration 4
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
harness="${1:?usage: scripts/bench-busy-poll.sh HARNESS_DIR [--hogs N] [run-echo.sh options...]}"
harness="$(cd "$harness" && pwd)"
shift
hogs="$(nproc)"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --hogs)
      hogs="${2:?--hogs needs a value}"
      shift 2
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
cargo build --release --manifest-path "$here/Cargo.toml" --example echo-server
ours="$here/target/release/examples/echo-server"

pids=()
stop_hogs() {
  if [ "${#pids[@]}" -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_hogs EXIT
for _ in $(seq 1 "$hogs"); do
  # A plain busy loop at normal priority, as another program on the machine.
  bash -c 'while :; do :; done' &
  pids+=("$!")
done
echo "bench-busy-poll: $hogs CPU hog(s) running beside the servers"

cpus="0-$(($(nproc) - 1))"
cd "$harness"
./run-echo.sh --server-cpu "$cpus" --client-cpu "$cpus" "${args[@]}" none \
  --extra "ours-2hubs-busy=$ours --addr {addr} --hubs 2" \
  --extra "ours-2hubs-nopoll=$ours --addr {addr} --hubs 2 --busy-poll 0"
