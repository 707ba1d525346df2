#!/usr/bin/env bash
# The cross-hub stress (scheduler/tests/stress.rs) for longer than the test
# suite runs it: channels, Event, Semaphore, Mutex and Condvar shared by
# greenlets of 2 to 4 hubs and by plain threads, with busy polling at 0, 50
# and 5000 µs. Each round runs every configuration once; a lost wake-up
# fails the round after a bounded wait, with the configuration named.
#
#   scripts/stress-cross-hub.sh [ROUNDS]        # default 300, in release
#
# With CPU_HOG=1, a busy loop runs on every core meanwhile, so the hubs
# and threads are preempted at random points.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-300}"
hogs=()
cleanup() {
    for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

if [[ "${CPU_HOG:-0}" == 1 ]]; then
    for _ in $(seq "$(nproc)"); do
        (while :; do :; done) &
        hogs+=("$!")
    done
fi

CROSS_HUB_STRESS_ROUNDS="$rounds" cargo test --release -p runtime-scheduler --test stress -- --nocapture
