#!/usr/bin/env bash
# Compares examples/resp-server with a real redis-server under redis-benchmark,
# after a redis-cli smoke check of ours.
#
# Usage: scripts/bench-redis.sh [ROUNDS]
#
# Both servers run pinned to CPU 0, redis-benchmark to CPU 1:
#   redis-benchmark -t ping,set,get,incr,lpush,lpop -c 50 -n 200000 [-P 16] -q --csv
# (one test at a time, as ping_inline,ping_mbulk,... so each server's CPU time
# can be told per test) once with 16 requests pipelined per connection and
# once without, ROUNDS times each (default 1; the table shows medians),
# alternating servers.
# Installs redis-server and redis-tools with apt-get when they are missing.
# Environment: REQUESTS (200000), CLIENTS (50), OURS_PORT (6380),
# REDIS_PORT (6381).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-1}"
requests="${REQUESTS:-200000}"
clients="${CLIENTS:-50}"
ours_port="${OURS_PORT:-6380}"
redis_port="${REDIS_PORT:-6381}"
tests=ping_inline,ping_mbulk,set,get,incr,lpush,lpop

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi

cargo build --release --quiet --manifest-path "$here/Cargo.toml" --example resp-server

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

taskset -c 0 "$here/target/release/examples/resp-server" --addr "127.0.0.1:$ours_port" >"$work/ours.log" 2>&1 &
pids+=($!)
taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$work/redis.log" &
pids+=($!)
for port in "$ours_port" "$redis_port"; do
    for _ in $(seq 100); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] || { echo "no server on port $port" >&2; exit 1; }
done

# The smoke check: redis-cli against ours, each answer as redis-server gives it.
smoke() {
    local expected="$1"
    shift
    local got
    got="$(redis-cli -p "$ours_port" "$@" 2>&1)"
    if [ "$got" != "$expected" ]; then
        echo "smoke check failed: redis-cli $*" >&2
        echo "  expected: $expected" >&2
        echo "  got:      $got" >&2
        exit 1
    fi
}
redis-cli -p "$ours_port" flushall >/dev/null
smoke OK set greeting hello
smoke hello get greeting
smoke OK set visits 41
smoke 42 incr visits
smoke 3 rpush fruit apple banana cherry
smoke "$(printf 'apple\nbanana\ncherry')" lrange fruit 0 -1
smoke "WRONGTYPE Operation against a key holding the wrong kind of value" get fruit
smoke "ERR value is not an integer or out of range" incr greeting
smoke "ERR wrong number of arguments for 'get' command" get
smoke "ERR unknown command 'frobnicate', with args beginning with: 'x' " frobnicate x
echo "redis-cli smoke check: all answers as expected"

# CPU time (ns) a process has run for, all its threads.
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat | awk '{ total += $1 } END { printf "%.0f\n", total }'
}

results="$work/results"
for round in $(seq "$rounds"); do
    for mode in pipelined plain; do
        pipeline=()
        [ "$mode" = pipelined ] && pipeline=(-P 16)
        echo "round $round/$rounds: $mode" >&2
        for test in ${tests//,/ }; do
            for server in ours redis; do
                port="$ours_port" pid="${pids[0]}"
                [ "$server" = redis ] && port="$redis_port" pid="${pids[1]}"
                redis-cli -p "$port" flushall >/dev/null
                before="$(cpu_ns "$pid")"
                line="$(taskset -c 1 redis-benchmark -p "$port" -t "$test" -c "$clients" -n "$requests" \
                    "${pipeline[@]}" -q --csv | tr -d '"' | awk -F, '$1 != "test" && $2 > 0 { print $1, $2 }')"
                after="$(cpu_ns "$pid")"
                # test, requests per second, requests per second of server CPU time
                echo "$line" | awk -v mode="$mode" -v server="$server" -v n="$requests" -v ns="$((after - before))" \
                    '{ print mode, server, $1, $2, n / (ns / 1e9) }' >>"$results"
            done
        done
    done
done

# Median of each (mode, server, test), then one row per (mode, test).
median() {
    sort -k1,1 -k2,2 -k3,3 -k4,4n | awk '
        { key = $1 " " $2 " " $3; values[key, ++count[key]] = $4; if (!(key in seen)) { seen[key] = 1; keys[++n] = key } }
        END { for (i = 1; i <= n; i++) { k = keys[i]; c = count[k]; print k, values[k, int((c + 1) / 2)] } }'
}
awk '{ print $1, $2, $3, $4 }' "$results" | median >"$work/rps"
awk '{ print $1, $2, $3, $5 }' "$results" | median >"$work/per-cpu"
echo
echo "Requests per second (median of $rounds), and requests per second of server CPU time"
echo "(the latter is steadier when other work shares the machine):"
printf '\n%-10s %-12s %12s %12s %6s   %14s %14s %6s\n' mode test "ours req/s" "redis req/s" ratio \
    "ours req/cpu-s" "redis req/cpu-s" ratio
awk '
    FILENAME == ARGV[1] { rps[$1, $2, $3] = $4; if (!(($1, $3) in seen)) { seen[$1, $3] = 1; rows[++n] = $1 SUBSEP $3 } next }
    { cpu[$1, $2, $3] = $4 }
    END {
        for (i = 1; i <= n; i++) {
            split(rows[i], r, SUBSEP)
            ours = rps[r[1], "ours", r[2]]; redis = rps[r[1], "redis", r[2]]
            ours_cpu = cpu[r[1], "ours", r[2]]; redis_cpu = cpu[r[1], "redis", r[2]]
            printf "%-10s %-12s %12.0f %12.0f %6.2f   %14.0f %14.0f %6.2f\n", r[1], r[2], ours, redis,
                (redis > 0 ? ours / redis : 0), ours_cpu, redis_cpu, (redis_cpu > 0 ? ours_cpu / redis_cpu : 0)
        }
    }' "$work/rps" "$work/per-cpu"
