#!/usr/bin/env bash
# Runs the test suites of the greenlet core and the scheduler
# (`-p greenlet -p runtime-scheduler`) under AddressSanitizer and under
# Valgrind's memcheck, and fails unless both report zero errors and every
# test passes.
#
#   scripts/sanitize.sh            both runs
#   scripts/sanitize.sh asan       AddressSanitizer only
#   scripts/sanitize.sh valgrind   Valgrind only
#
# Needs the nightly toolchain (`cargo +nightly`, for `-Zsanitizer=address`)
# and `valgrind`; .ci/run calls this when both are there. Everything is built
# under target/sanitize, so normal builds are left alone. SANITIZE_JOBS sets
# cargo's -j (2 by default). Takes about six minutes on two cores, most of it
# building.
set -euo pipefail
cd "$(dirname "$0")/.."

root=target/sanitize
jobs=${SANITIZE_JOBS:-2}
packages=(-p greenlet -p runtime-scheduler)
# One test at a time, so that a crash names its test.
export RUST_TEST_THREADS=1

# Counts of sanitizer errors and of failed runs, for the summary.
asan_errors=0
valgrind_errors=0
failed=()

# `--skip NAME` for each name given.
skip_args() {
    local name
    for name in "$@"; do
        printf -- '--skip\n%s\n' "$name"
    done
}

run_asan() {
    # Skipped under ASan, because ASan changes what they check:
    local skip=(
        # Children that must die of SIGSEGV, or of Rust's report of a thread
        # stack overflow: ASan's own SEGV handler (chained to from ours for
        # anything that is not a greenlet overflow) reports and exits first.
        other_segfaults_are_passed_on
        thread_stack_overflow_gets_rusts_report
        # Compares the addresses of a local variable on recycled stacks: to
        # detect use after return, ASan moves such locals to its fake stacks.
        recycled_stack_still_overflows_cleanly
        # Lowers RLIMIT_AS a little above what the child uses, to run out of
        # address space for stacks: ASan's fake stacks run out of it first.
        stack_allocation_failure_panics_in_the_starter
        # Measures RSS, which ASan's shadow memory, quarantine and the fake
        # stack each finished coroutine leaves behind dominate.
        memory_levels_off_over_rounds
        # Counts the stack pages that large locals touched: ASan moves such
        # locals to its fake stacks, off the greenlet's stack.
        resident_bytes_count_the_stack_pages_greenlets_touched
        # Check with mincore that the page of a deep local was given back by
        # a stack trim: ASan keeps such locals on its fake stacks instead.
        trim_gives_back_the_pages_below_the_stack_pointer
        parked_greenlets_give_back_their_deep_stack_pages
    )
    local log=$root/asan.log
    mkdir -p "$root"
    echo "== AddressSanitizer: building and running the tests (log: $log)"
    local args
    mapfile -t args < <(skip_args "${skip[@]}")
    # Leak detection is off: some leaks are the documented behaviour (a
    # greenlet that refuses to die is leaked with its stack, as are greenlets
    # still suspended when their thread exits, and the payload of a panic
    # raised by dropping a panic payload). The suites count live greenlets
    # and stacks themselves.
    local status=0
    ASAN_OPTIONS=detect_leaks=0 \
        RUSTFLAGS=-Zsanitizer=address \
        RUSTDOCFLAGS=-Zsanitizer=address \
        CARGO_TARGET_DIR=$root/asan \
        cargo +nightly test -j"$jobs" --target x86_64-unknown-linux-gnu "${packages[@]}" \
        --features greenlet/sanitizer --no-fail-fast -- "${args[@]}" >"$log" 2>&1 || status=$?
    # Reports from child processes end up in the log too (the tests print
    # their children's output when they fail).
    asan_errors=$(grep -c 'ERROR: AddressSanitizer' "$log" || true)
    grep -E '^test result|^     Running|^   Doc-tests' "$log" || true
    if [ "$status" -ne 0 ]; then
        failed+=("asan (cargo test exited with $status; see $log)")
    fi
    echo "== AddressSanitizer: $asan_errors errors; skipped: ${skip[*]}"
}

run_valgrind() {
    # Skipped under Valgrind, because Valgrind changes what they measure:
    local skip=(
        # Counts the lines of /proc/self/maps, which include Valgrind's own
        # mappings (they grow as it runs).
        hundred_thousand_parked_greenlets
        # Measures RSS, which includes memcheck's shadow memory.
        memory_levels_off_over_rounds
        # Reads every hub's dump through the console, which answers "hub did
        # not answer" after one second: under memcheck, resolving the stacks'
        # debug info takes longer than that.
        dump_lists_every_greenlet_of_every_hub_with_its_stack
    )
    # The tests that run a scenario in a child process need no skipping,
    # even those whose child crashes on purpose: Valgrind does not follow
    # children (no --trace-children), so they run natively and the parent,
    # which does run under Valgrind, checks how they ended. Doctests are not
    # run here: rustdoc builds them when the test runs.
    local dir=$root/valgrind
    mkdir -p "$dir"
    echo "== Valgrind: building the tests with stacks registered (feature greenlet/valgrind)"
    local bins
    mapfile -t bins < <(
        CARGO_TARGET_DIR=$dir cargo test -j"$jobs" "${packages[@]}" --features greenlet/valgrind --no-run \
            --message-format=json 2>/dev/null | grep '"test":true' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4
    )
    if [ "${#bins[@]}" -eq 0 ]; then
        failed+=("valgrind (no test binaries were built)")
        return
    fi
    local args
    mapfile -t args < <(skip_args "${skip[@]}")
    local bin name log status count
    for bin in "${bins[@]}"; do
        name=$(basename "$bin")
        log=$dir/$name.valgrind.log
        status=0
        valgrind --error-exitcode=99 --leak-check=no --log-file="$log" "$bin" "${args[@]}" \
            >"$dir/$name.out" 2>&1 || status=$?
        count=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
        valgrind_errors=$((valgrind_errors + count))
        echo "$name: $(grep '^test result' "$dir/$name.out" || echo 'no test result'); $count errors"
        if [ "$status" -ne 0 ]; then
            failed+=("valgrind $name (exit status $status; see $log and $dir/$name.out)")
        fi
    done
    echo "== Valgrind: $valgrind_errors errors; skipped: ${skip[*]}"
}

start=$SECONDS
case "${1:-all}" in
    asan) run_asan ;;
    valgrind) run_valgrind ;;
    all)
        run_asan
        run_valgrind
        ;;
    *)
        echo "usage: $0 [asan|valgrind]" >&2
        exit 2
        ;;
esac

echo "== sanitize.sh: AddressSanitizer $asan_errors errors, Valgrind $valgrind_errors errors," \
    "$(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
if [ "${#failed[@]}" -ne 0 ] || [ "$asan_errors" -ne 0 ] || [ "$valgrind_errors" -ne 0 ]; then
    for run in "${failed[@]}"; do
        echo "failed: $run" >&2
    done
    exit 1
fi
