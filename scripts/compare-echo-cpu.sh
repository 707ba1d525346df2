#!/usr/bin/env bash
# Compares two builds of examples/echo-server by the server's CPU time per
# echoed message (from /proc/PID/schedstat, in nanoseconds), which a busy
# shared machine disturbs far less than messages per second.
#
# Usage: scripts/compare-echo-cpu.sh ECHO_LOAD BEFORE AFTER [ROUNDS]
#
# ECHO_LOAD is the load generator of the echo benchmark harness (see
# scripts/bench-echo.sh); BEFORE and AFTER are echo-server binaries (build one
# from each commit). The servers alternate, ROUNDS times (default 12), each
# on CPU 0 with the load on CPU 1: 100 connections of 64-byte ping-pong for
# 3 s (PIPELINE=K in the environment: K messages in flight per connection).
# Prints each round, then the medians and the median of the per-round
# ratios (AFTER / BEFORE: below 1 is cheaper).
set -euo pipefail
load="${1:?usage: scripts/compare-echo-cpu.sh ECHO_LOAD BEFORE AFTER [ROUNDS]}"
declare -A bin=([before]="${2:?BEFORE binary}" [after]="${3:?AFTER binary}")
rounds="${4:-12}"
port=18100
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$rounds"); do
  for name in before after; do
    port=$((port + 1))
    taskset -c 0 "${bin[$name]}" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.05
    done
    out="$(taskset -c 1 "$load" --addr "127.0.0.1:$port" --conns 100 --duration 3 --warmup 0 --pipeline "${PIPELINE:-1}" 2>&1)"
    cpu_ns="$(awk '{print $1}' "/proc/$pid/schedstat")"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    msgs="$(grep -o 'messages=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)"
    echo "$round $name msgs=$msgs ns_per_msg=$((cpu_ns / msgs))" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
cost = {name: [int(r[3].split("=")[1]) for r in rows if r[1] == name] for name in ("before", "after")}
before, after = statistics.median(cost["before"]), statistics.median(cost["after"])
paired = statistics.median(a / b for a, b in zip(cost["after"], cost["before"]))
print(f"server ns per message, medians: before {before:.0f}, after {after:.0f}; "
      f"ratio of medians {after / before:.3f}, median of per-round ratios {paired:.3f}")
PY
