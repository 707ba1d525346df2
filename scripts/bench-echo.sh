#!/usr/bin/env bash
# Compares examples/echo-server with peer echo servers (raw mio, tokio
# current_thread, may, thread-per-connection, gevent) under the same load.
#
# Usage: scripts/bench-echo.sh HARNESS_DIR [--hubs N] [run-echo.sh options...]
#
# HARNESS_DIR is a checkout of the echo benchmark harness: the directory with
# run-echo.sh, the peer servers and the echo-load generator. Servers run on
# CPU 0, the load on CPU 1. Examples:
#   scripts/bench-echo.sh ../bench --repeat 3                 # 100 conns, 64 B ping-pong
#   scripts/bench-echo.sh ../bench --repeat 3 --pipeline 16   # 16 messages in flight per connection
#   scripts/bench-echo.sh ../bench --idle 10000               # memory per idle connection
#   scripts/bench-echo.sh ../bench --hubs 2 --repeat 3        # several cores (below)
#   scripts/bench-echo.sh ../bench --hubs 1,2,4,8 --repeat 3  # a sweep of hub counts (below)
#
# --hubs N (N >= 2) compares servers that use several cores: ours on one hub
# and on N hubs (--hubs N, one SO_REUSEPORT listener each), tokio-echo
# (current_thread), and tokio's multi_thread runtime and may with N workers
# (--threads N). Servers and the load generator then share every core
# (--server-cpu and --client-cpu given after --hubs override that), so compare
# msgs/s and msgs per server CPU-second (msgs/s / srvCPU%) within one run.
#
# --hubs 1,2,4,8 (a list) sweeps: for every N in the list, ours on N hubs and
# tokio multi_thread and may with N workers, all in one run (rows
# ours-Nhubs, tokio-mtN, may-mtN), sharing every core as above. Counts above
# the number of cores show what oversubscription costs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
harness="${1:?usage: scripts/bench-echo.sh HARNESS_DIR [--hubs N] [run-echo.sh options...]}"
harness="$(cd "$harness" && pwd)"
shift
hubs=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --hubs)
      hubs="${2:?--hubs needs a value}"
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
cd "$harness"
if [ "$hubs" = 1 ]; then
  exec ./run-echo.sh "${args[@]}" --extra "ours=$ours --addr {addr}"
fi
# Where run-echo.sh puts the peer servers it builds (its own rule), so that
# they can be started with --threads.
if [ -n "${BENCH_TARGET_DIR:-}" ]; then
  target="$BENCH_TARGET_DIR"
elif [ -w "$harness" ]; then
  target="$harness/target"
else
  target="${TMPDIR:-/tmp}/shared-bench-target"
fi
export BENCH_TARGET_DIR="$target"
cpus="0-$(($(nproc) - 1))"
extras=()
case "$hubs" in
  *,*)
    # A sweep: every count in the list, ours and both multi-threaded peers.
    IFS=, read -r -a counts <<<"$hubs"
    for n in "${counts[@]}"; do
      case "$n" in '' | *[!0-9]* | 0) echo "bench-echo.sh: --hubs list items must be positive integers, got '$n'" >&2; exit 2 ;; esac
      extras+=(--extra "ours-${n}hubs=$ours --addr {addr} --hubs $n")
      extras+=(--extra "tokio-mt$n=$target/release/tokio-echo --addr {addr} --threads $n")
      extras+=(--extra "may-mt$n=$target/release/may-echo --addr {addr} --threads $n")
    done
    exec ./run-echo.sh --server-cpu "$cpus" --client-cpu "$cpus" "${args[@]}" none "${extras[@]}"
    ;;
  *[!0-9]* | 0)
    echo "bench-echo.sh: --hubs takes a positive integer or a comma-separated list, got '$hubs'" >&2
    exit 2
    ;;
esac
exec ./run-echo.sh --server-cpu "$cpus" --client-cpu "$cpus" "${args[@]}" tokio-echo \
  --extra "ours=$ours --addr {addr}" \
  --extra "ours-${hubs}hubs=$ours --addr {addr} --hubs $hubs" \
  --extra "tokio-mt$hubs=$target/release/tokio-echo --addr {addr} --threads $hubs" \
  --extra "may-mt$hubs=$target/release/may-echo --addr {addr} --threads $hubs"
