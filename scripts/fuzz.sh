#!/usr/bin/env bash
# Fuzzes every decoder of guest input on the host (tests/fuzz.rs), in
# release mode with overflow checks and debug assertions on, and prints
# per decoder the executions done, the time and the seed.
#
#   scripts/fuzz.sh                  # a short run (the harness's defaults)
#   scripts/fuzz.sh --long           # 10,000,000 executions per decoder
#   scripts/fuzz.sh --execs N        # N executions per decoder
#   scripts/fuzz.sh --seed S         # run seed (decimal or 0x-hex); --long
#                                    #   picks a fresh random one otherwise
#   scripts/fuzz.sh --threads N      # decoders fuzzed at once (default: CPUs)
#   scripts/fuzz.sh --strict         # fail on the known issues too
#   scripts/fuzz.sh --strict=ID,ID   #   (or on those named only)
#   scripts/fuzz.sh --replay C TARGET  # replay one failing case: its case
#                                    #   seed and target, from the report
#   scripts/fuzz.sh ... TARGET...    # only these decoders (trap, console_line,
#                                    #   console_pl011, vgic_regs, vgic_sgi,
#                                    #   psci, hypercall, vgic_lr, vgic_gate)
#
# An execution is one generated input: one ESR, one SGI value, one PSCI or
# hypercall register set, or one sequence of accesses or steps on a fresh
# model (the register model, a console, the list registers, the gate).
# A failure prints its run seed, case seed, panic and (shrunk) input, and
# how to replay it. The full log is kept in target/fuzz/fuzz.log.
# `cargo test` runs the same harness briefly, with a fixed seed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

execs=""
seed=""
threads=$(nproc 2>/dev/null || echo 2)
strict=""
replay=""
targets=()
long=0
while [ $# -gt 0 ]; do
    case "$1" in
        --long) long=1 ;;
        --execs) execs=${2:?--execs needs a number}; shift ;;
        --seed) seed=${2:?--seed needs a number}; shift ;;
        --threads) threads=${2:?--threads needs a number}; shift ;;
        --strict) strict=1 ;;
        --strict=*) strict=${1#--strict=} ;;
        --replay) replay=${2:?--replay needs a case seed}; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) targets+=("$1") ;;
    esac
    shift
done

if [ "$long" = 1 ] && [ -z "$execs" ]; then
    execs=10000000
fi
if [ -z "$seed" ] && [ "$long" = 1 ]; then
    seed=0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')
fi
if [ -n "$replay" ] && [ ${#targets[@]} -ne 1 ]; then
    echo "fuzz.sh: --replay needs the one target the case seed belongs to" >&2
    exit 2
fi

# Release code, but arithmetic overflow and debug assertions still panic:
# a decoder that overflows on some input is a bug even if release code
# would wrap. A target directory of its own keeps these flags from
# invalidating other release builds.
export CARGO_TARGET_DIR=$root/target/fuzz
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_BENCH_OVERFLOW_CHECKS=true
export CARGO_PROFILE_BENCH_DEBUG_ASSERTIONS=true
[ -n "$execs" ] && export BULKHEAD_FUZZ_EXECS=$execs
[ -n "$seed" ] && export BULKHEAD_FUZZ_SEED=$seed
[ -n "$strict" ] && export BULKHEAD_FUZZ_STRICT=$strict
[ -n "$replay" ] && export BULKHEAD_FUZZ_REPLAY=$replay

echo "== building tests/fuzz.rs (release, overflow checks on)" >&2
cargo test --release --test fuzz --no-run 2>&1 | { grep -v '^ *Executable' || true; } >&2

mkdir -p "$CARGO_TARGET_DIR"
log=$CARGO_TARGET_DIR/fuzz.log
filter=()
if [ ${#targets[@]} -gt 0 ]; then
    filter=(--exact "${targets[@]}")
fi
echo "== fuzzing: ${execs:-the default number of} executions per decoder," \
    "seed ${seed:-the fixed default}, $threads at a time" >&2
start=$(date +%s)
status=0
cargo test --release --test fuzz -- --nocapture --test-threads "$threads" "${filter[@]}" \
    >"$log" 2>&1 || status=$?
elapsed=$(( $(date +%s) - start ))

# The failures' reports, as the harness wrote them: with --nocapture each
# is in the log where it happened (from its first line to the replay
# command), before the test runner's summary of the failures.
if [ "$status" -ne 0 ]; then
    awk '/^fuzz [a-z_0-9]+: FAILED on/ { on = 1 }
         on || /^fuzz [a-z_0-9]+: the generator panicked/ { print }
         /^  replay: / { on = 0 }' "$log" >&2
    sed -n '/^failures:$/,$p' "$log" | grep -v '^ *[0-9]*: \|^ *at /rustc/\|^stack backtrace:\|^note: ' >&2 \
        || cat "$log" >&2
fi
if [ -n "$replay" ]; then
    grep -A200 '^fuzz .*replaying' "$log" | grep -v '^test \|^$' || true
fi

# One line per decoder: executions, decoder calls, seconds, seed.
awk -v elapsed="$elapsed" '
    /^fuzz [a-z_0-9]+: [0-9]+ executions/ {
        t = $2; sub(":", "", t)
        n = $3; calls = $5; secs = $8; seed = $11; sub(";", "", seed)
        known = ""
        if (index($0, "; known issue")) { known = substr($0, index($0, "; known issue") + 2) }
        rows[++count] = sprintf("%-14s %13s %15s %9s  %s  %s", t, n, calls, secs, seed, known)
        total += secs
    }
    END {
        if (count == 0) exit
        printf "%-14s %13s %15s %9s  %s\n", "decoder", "executions", "decoder calls", "seconds", "seed"
        for (i = 1; i <= count; i++) print rows[i]
        printf "%d decoders, %.1f decoder-seconds, %d s wall\n", count, total, elapsed
    }' "$log"
grep '^test result:' "$log" || true
exit "$status"
