#!/usr/bin/env bash
# Compares examples/std-echo (std::net made cooperative by the hooks) with
# examples/echo-server (runtime::net, no hooks) under the same load: both
# built in release, run alternately (the order rotated each round) by the
# echo benchmark harness, server on CPU 0, load on CPU 1. Prints the
# harness's table (medians over the rounds) and the ratio of the median
# msgs/s, std-echo / echo-server.
#
# Usage: scripts/bench-std-echo.sh HARNESS_DIR [--repeat R] [run-echo.sh options...]
#
# HARNESS_DIR is a checkout of the echo benchmark harness (the directory
# with run-echo.sh and the echo-load generator). Examples:
#   scripts/bench-std-echo.sh ../bench --repeat 5                 # 100 conns, 64 B ping-pong
#   scripts/bench-std-echo.sh ../bench --repeat 5 --pipeline 16   # 16 messages in flight per connection
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
harness="${1:?usage: scripts/bench-std-echo.sh HARNESS_DIR [--repeat R] [run-echo.sh options...]}"
harness="$(cd "$harness" && pwd)"
shift
args=("$@")
case " ${args[*]} " in
  *" --repeat "*) ;;
  *) args+=(--repeat 5) ;;
esac
# Two builds: the hooks feature would otherwise be linked into echo-server too.
cargo build --release --manifest-path "$here/Cargo.toml" --example echo-server
cargo build --release --manifest-path "$here/Cargo.toml" --features hooks --example std-echo
bin="$here/target/release/examples"
out="$(mktemp /tmp/bench-std-echo.XXXXXX)"
trap 'rm -f "$out"' EXIT
cd "$harness"
./run-echo.sh "${args[@]}" none \
  --extra "echo-server=$bin/echo-server --addr {addr}" \
  --extra "std-echo=$bin/std-echo --addr {addr}" | tee "$out"
# The table: the median msgs/s in column 2, the server's CPU use in column 9.
# On a machine busy with other work, the ratio within each round (the two
# ran one after the other) and msgs per server CPU-second say more than the
# medians' ratio.
awk '
  /^# \[[0-9]+\/[0-9]+\] / {
    round = substr($2, 2, index($2, "/") - 2)
    for (i = 1; i <= NF; i++) if ($i ~ /^msgs_per_s=/) rate[$3, round] = substr($i, 12)
    rounds = round > rounds ? round : rounds
  }
  $1 == "echo-server" && $2 ~ /^[0-9]+$/ { ours = $2; ours_cpu = $9 }
  $1 == "std-echo" && $2 ~ /^[0-9]+$/ { std = $2; std_cpu = $9 }
  END {
    if (!(ours > 0 && std > 0)) exit 1
    printf "\nstd-echo / echo-server: %.3fx msgs/s (ratio of the medians)\n", std / ours
    n = 0
    for (r = 1; r <= rounds; r++) if (rate["echo-server", r] > 0 && rate["std-echo", r] > 0) ratios[++n] = rate["std-echo", r] / rate["echo-server", r]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (ratios[j] < ratios[i]) { t = ratios[i]; ratios[i] = ratios[j]; ratios[j] = t }
    if (n > 0) printf "std-echo / echo-server: %.3fx msgs/s (median of the %d rounds'"'"' ratios)\n", (n % 2 ? ratios[(n + 1) / 2] : (ratios[n / 2] + ratios[n / 2 + 1]) / 2), n
    if (ours_cpu > 0 && std_cpu > 0) printf "std-echo / echo-server: %.3fx msgs per server CPU-second (medians)\n", (std / std_cpu) / (ours / ours_cpu)
  }' "$out"
