#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after the other, starting from the
# committed seeds (fuzz/seeds/<target>, read only) and the local corpus (fuzz/corpus/<target>,
# gitignored, where libFuzzer writes what it finds).
#
# Usage: fuzz/run-all.sh [SECONDS]     (from any directory; no stdin needed, fine under CI=true)
#
# Exits non-zero if any target crashes (panic, timeout, out of memory). Each target's full
# libFuzzer log is kept in fuzz/target/run-all/<target>.log; crash inputs go to
# fuzz/artifacts/<target>/.
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
    echo "usage: $0 [SECONDS]  (a positive whole number of seconds per target)" >&2
    exit 2
fi

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

# Every [[bin]] of fuzz/Cargo.toml, so a new target is run without editing this script.
mapfile -t targets < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "cargo fuzz list found no target" >&2
    exit 2
fi

# The stable toolchain refuses -Zsanitizer, so no sanitizer: the core forbids unsafe code, and
# the targets are built with debug assertions and overflow checks on, which catch what matters.
fuzz_flags=(--sanitizer none)
libfuzzer_flags=(-max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10)

echo "== building ${#targets[@]} targets"
cargo fuzz build "${fuzz_flags[@]}"

logs="$fuzz_dir/target/run-all"
mkdir -p "$logs"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$fuzz_dir/corpus/$t"
    log="$logs/$t.log"
    echo "== $t (${secs}s)"
    status=0
    # The writable corpus comes first: libFuzzer adds what it finds to the first directory.
    corpora=("fuzz/corpus/$t")
    if [ -d "fuzz/seeds/$t" ]; then
        corpora+=("fuzz/seeds/$t")
    fi
    cargo fuzz run "${fuzz_flags[@]}" "$t" "${corpora[@]}" \
        -- "${libfuzzer_flags[@]}" </dev/null >"$log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then
        grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 ||
            echo "(no 'Done' line: see $log)"
    else
        echo "CRASH in $t (exit $status), log: $log"
        grep -E 'panicked at|^SUMMARY|ERROR: libFuzzer|Test unit written to' "$log" || tail -n 30 "$log"
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "== FAILED: ${failed[*]}"
    exit 1
fi
echo "== all ${#targets[@]} targets ran ${secs}s without a crash"
