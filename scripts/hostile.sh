#!/usr/bin/env bash
# Runs the hostile-guest test (tests/hostile.rs on tests/configs/hostile.toml
# and, on the GICv2 boards, gicv2-hostile.toml and rpi4-hostile.toml, under
# -icount): a partition on two vCPUs makes a seeded random mix of
# every operation a guest can throw at the hypervisor while its
# neighbour checks each heartbeat interval (within 1% of nominal) and an
# exact IPI ping-pong, and that it leaves its vCPUs only for its own
# interrupts. Prints the figures of each board: operations, the
# neighbour's heartbeat intervals (min and max against nominal, in counter
# ticks), ping-pong rounds and wall time.
#
#   scripts/hostile.sh               # 100,000 operations, as scripts/test.sh
#   scripts/hostile.sh --long        # 1,000,000 operations
#   scripts/hostile.sh --ops N       # N operations (100,000 or more: the
#                                    #   test wants the hostile guest to run
#                                    #   for a third of the neighbour's watch,
#                                    #   which has a fixed 40 ms margin)
#   scripts/hostile.sh --seed S      # the hostile guest's seed (decimal or
#                                    #   0x-hex); --long picks a fresh random
#                                    #   one otherwise
#
# Both guests read the count (BULKHEAD_HOSTILE_OPS) at build time: the
# neighbour watches for as long as the hostile guest needs. The test builds
# its image with scripts/build.sh and boots it through bulkhead-config's
# bounded QEMU runner (a time limit, stopped by its pid). The full log is
# kept in target/hostile/hostile-<ops>.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }

ops=""
seed=""
long=0
while [ $# -gt 0 ]; do
    case "$1" in
        --long) long=1 ;;
        --ops) ops=${2:?--ops needs a number}; shift ;;
        --seed) seed=${2:?--seed needs a number}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "hostile.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$long" = 1 ]; then
    ops=${ops:-1000000}
    if [ -z "$seed" ]; then
        seed=0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')
    fi
fi
ops=${ops:-100000}
case "$ops" in
    ''|*[!0-9]*) echo "hostile.sh: --ops takes a decimal number" >&2; exit 2 ;;
esac

export BULKHEAD_HOSTILE_OPS=$ops
if [ -n "$seed" ]; then
    export BULKHEAD_HOSTILE_SEED=$seed
else
    unset BULKHEAD_HOSTILE_SEED
fi

mkdir -p target/hostile
log=target/hostile/hostile-$ops.log
echo "== building tests/hostile.rs" >&2
cargo test --test hostile --no-run 2>&1 | { grep -v '^ *Executable' || true; } >&2
echo "== hostile guest: $ops operations, seed ${seed:-the default}" >&2
start=$(date +%s)
status=0
cargo test --test hostile -- --nocapture >"$log" 2>&1 || status=$?
elapsed=$(( $(date +%s) - start ))

if [ "$status" -ne 0 ]; then
    sed -n '/^failures:$/,$p' "$log" | grep -v '^ *[0-9]*: \|^ *at /rustc/\|^stack backtrace:\|^note: ' >&2 \
        || cat "$log" >&2
fi
grep -h '^\[hostile\] hostile: seed=' "$log" || true
grep -h '^\[neighbour\] neighbour: \(vcpu [0-9]\|pingpong\)' "$log" || true
grep -h '^figures: ' "$log" || echo "hostile.sh: no figures (see $log)" >&2
echo "test wall time ${elapsed}s (build and boot); log in $log"
grep '^test result:' "$log" || true
exit "$status"
