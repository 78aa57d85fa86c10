#!/usr/bin/env bash
# Deterministic benchmarks: the benchmark guest (guest-lib/examples/
# bench-irq.rs) natively at EL1 and in a Bulkhead partition, on the setting
# of measuring.md (cortex-a53, 1 GHz counter, -icount shift=0: one counter
# tick per instruction), side by side.
#
#   scripts/bench.sh
#
# Runs each configuration twice and fails, naming the figure, if the two
# runs disagree on anything:
#   native    the guest ELF on QEMU virt without EL2 (it starts at EL1);
#   bulkhead  the image for tests/configs/bench.toml, virtualization=on;
#   trace     the same image with QEMU's instruction trace (-d exec, one
#             instruction per block), streamed through a parser
#             (scripts/bench.py) and never stored: instructions from the
#             hypervisor's EL2 IRQ vector entry to the guest's IRQ vector,
#             on the CPU that takes the interrupt.
#             Its guest figures must equal the bulkhead runs' (same run).
#   interference  the image for tests/configs/bench-interference.toml: a
#             victim (guest-lib/examples/bench-victim.rs, CPU 0) takes 256
#             samples of its virtual timer (CVAL -> its IRQ vector) in each
#             phase of a schedule both partitions read from the physical
#             counter, while its neighbour (bench-aggressor.rs, CPUs 1 and
#             2) runs one aggressor a phase: idle, console_hvc,
#             console_pl011, gic, sgi, hvc, psci, mmio, cache. Untraced (the
#             victim's own figures, in ticks), then traced like the above:
#             per aggressor, the instructions the victim's CPU executes from
#             the EL2 IRQ vector entry to the victim's IRQ vector (min,
#             median, max: the deterministic figure, which the idle phase's
#             max is the reference for) and its entries to EL2, attributed
#             to the phase by the victim's sampling function (one a phase)
#             that the interrupt came in. Checks one window per sample,
#             that the two partitions agree on the schedule and that the
#             neighbour's operations kept to it.
#   gicv2     the same guest natively and in a partition
#             (tests/configs/gicv2-bench.toml) on QEMU virt with
#             gic-version=2, the GICv2 backend's figures, untraced: beside
#             the GICv3 ones on the same measuring setting.
#   growth    the interference victim's timer in its first phase (256
#             samples) alone on the board and beside one, two and three
#             neighbours of one vCPU each, busy through that phase
#             (tests/configs/bench-growth-{1,2,3,4}.toml,
#             guest-lib/examples/bench-neighbour.rs): untraced twice (the
#             victim's own figures) and traced once (EL2 IRQ entry ->
#             vector on its CPU, as for interference); and its boot figure
#             with 16 MiB and with 256 MiB (bench-boot-256.toml): power-on
#             to the first guest instruction per MiB of partition memory.
# Image sizes come from target/images/bench.elf, lines of code from src/.
# Prints a Markdown table (also target/bench/report.md) and writes
# target/bench/report.json and report.svg (scripts/bench.py report; the
# picture also to tests/bench-report.svg, which the README shows); the
# console logs are kept in target/bench/. Every latency is min, median and
# max over its samples (at least 200); scripts/test.sh holds the figures to
# tests/bench-budget.toml.
# Every QEMU has a time limit and is stopped by its own pid.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
limit=180 # seconds per QEMU run
out=$root/target/bench
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)" >&2; }

step "setup and build"
scripts/setup.sh
image=$(scripts/build.sh --config tests/configs/bench.toml)
examples=$root/target/bulkhead/aarch64-unknown-none/release/examples
guest_elf=$examples/bench-irq
# The build script output of the image just built: the newest for the
# benchmark's configuration with the fast paths on (build.rs marks each
# OUT_DIR's `features` and `config`: clippy, a BULKHEAD_FAST_PATHS=off
# build and other configurations leave theirs beside it).
build_dir=
bench_config=$(realpath tests/configs/bench.toml) # as build.sh passes it
for dir in target/bulkhead/aarch64-unknown-none-softfloat/release/build/bulkhead-*/out; do
    grep -qx fast-paths "$dir/features" 2>/dev/null || continue
    grep -qxF "$bench_config" "$dir/config" 2>/dev/null || continue
    [ -n "$build_dir" ] && [ ! "$dir" -nt "$build_dir" ] || build_dir=$dir
done
if [ -z "$build_dir" ]; then
    echo "bench.sh: no build output of tests/configs/bench.toml with the fast paths on" >&2
    exit 1
fi

# Freeze what is measured: the builds may be redone by someone else meanwhile.
rm -rf "$out"
mkdir -p "$out"
cp "$image" "$out/bench.bin"
cp "${image%.bin}.elf" "$out/bench.elf"
cp "$guest_elf" "$out/bench-irq.elf"
cp "$build_dir/bulkhead_config.rs" "$out/bulkhead_config.rs"
while read -r blob; do
    cp "$build_dir/$blob" "$out/blob-$blob"
done < <(sed -nE 's/.*"\/([^"]+)"\)\).*/\1/p' "$out/bulkhead_config.rs")
# The interference image: built after the above is frozen (the build
# rewrites the configuration it embeds).
interference_image=$(scripts/build.sh --config tests/configs/bench-interference.toml)
cp "$interference_image" "$out/interference.bin"
cp "${interference_image%.bin}.elf" "$out/interference.elf"
cp "$examples/bench-victim" "$out/bench-victim.elf"
gicv2_image=$(scripts/build.sh --config tests/configs/gicv2-bench.toml)
cp "$gicv2_image" "$out/gicv2-bench.bin"
channel_image=$(scripts/build.sh --config tests/configs/bench-channel.toml)
cp "$channel_image" "$out/bench-channel.bin"
growth=(bench-growth-1 bench-growth-2 bench-growth-3 bench-growth-4 bench-boot-256)
for config in "${growth[@]}"; do
    growth_image=$(scripts/build.sh --config "tests/configs/$config.toml")
    cp "$growth_image" "$out/$config.bin"
    cp "${growth_image%.bin}.elf" "$out/$config.elf"
done

# QEMU through the configuration tool scripts/build.sh has just built: the
# board's machine in the measuring setting (bulkhead-config qemu
# --measuring --print shows the command line), with a time limit, stopped
# by its pid. The native run leaves out the virtualization extensions, so
# the guest starts at EL1.
tool=$root/target/bulkhead/release/bulkhead-config
native=(--native --kernel "$out/bench-irq.elf")
bulkhead=(--kernel "$out/bench.bin")
interference=(--kernel "$out/interference.bin")

# Runs QEMU ("$@": bulkhead-config qemu options) on board $board until it
# exits or `limit` seconds pass; its console goes to $1. Fails if it had to
# be stopped.
board=qemu-virt
run_qemu() {
    local log=$1
    shift
    local status=0
    "$tool" qemu --board "$board" --repo-root "$root" --measuring --timeout "$limit" "$@" \
        </dev/null >"$log" 2>"$log.stderr" || status=$?
    case "$status" in
        0) ;;
        124) echo "bench.sh: QEMU stopped at its ${limit}s limit: see $log and $log.stderr" >&2; return 1 ;;
        *) echo "bench.sh: QEMU failed (status $status): see $log and $log.stderr" >&2; return 1 ;;
    esac
}

# A Bulkhead run with the instruction trace streamed through the parser.
# $1 = bench (the interrupt benchmark), interference, or a growth
# configuration (bench-growth-N: its victim's, parsed as interference's),
# $2 = run number, $3 = "filtered" (leave the boot's bulk work out) or
# "full".
run_traced() {
    local what=$1 n=$2 mode=$3 name image elfs config filter kind=interference
    case "$what" in
        bench) name=trace-$n image=("${bulkhead[@]}") config=tests/configs/bench.toml
            elfs=("$out/bench.elf" "$out/bench-irq.elf") kind=bench ;;
        interference) name=interference-trace-$n image=("${interference[@]}")
            config=tests/configs/bench-interference.toml
            elfs=("$out/interference.elf" "$out/bench-victim.elf") ;;
        *) name=$what-trace-$n image=(--kernel "$out/$what.bin") config=tests/configs/$what.toml
            elfs=("$out/$what.elf" "$out/bench-victim.elf") ;;
    esac
    local fifo=$out/$name.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    if [ "$mode" = filtered ]; then
        filter=(-dfilter "$(python3 "$root/scripts/bench.py" filter "$kind" "${elfs[@]}")")
    else
        filter=()
    fi
    # The parser has a time limit of its own (coreutils timeout stops it by
    # its pid): status 124 if it was stopped.
    timeout "$limit" python3 "$root/scripts/bench.py" trace "$kind" "$fifo" "${elfs[@]}" \
        "$config" "$out/$name.json" "$mode" 2>"$out/$name.parse" &
    local parser=$!
    local status=0
    run_qemu "$out/$name.log" "${image[@]}" -- -accel tcg,one-insn-per-tb=on \
        -d exec,nochain "${filter[@]}" -D "$fifo" || status=$?
    # If QEMU never opened the log, the parser still waits for a writer.
    if kill -0 "$parser" 2>/dev/null && [ "$status" -ne 0 ]; then
        : >"$fifo" &
    fi
    local parsed=0
    wait "$parser" || parsed=$?
    if [ "$parsed" -eq 124 ]; then
        echo "bench.sh: stopped the trace parser (pid $parser) after ${limit}s" >&2
        status=1
    fi
    rm -f "$fifo"
    cat "$out/$name.parse" >&2
    [ "$status" -eq 0 ] || return 1
    return "$parsed"
}

for n in 1 2; do
    step "native run $n"
    run_qemu "$out/native-$n.log" "${native[@]}"
    step "Bulkhead run $n"
    run_qemu "$out/bulkhead-$n.log" "${bulkhead[@]}"
done
for n in 1 2; do
    step "interference run $n"
    run_qemu "$out/interference-$n.log" "${interference[@]}"
done
board=qemu-virt-gicv2
for n in 1 2; do
    step "GICv2: native run $n"
    run_qemu "$out/gicv2-native-$n.log" "${native[@]}"
    step "GICv2: Bulkhead run $n"
    run_qemu "$out/gicv2-bulkhead-$n.log" --kernel "$out/gicv2-bench.bin"
done
board=qemu-virt
for n in 1 2; do
    step "channels run $n"
    run_qemu "$out/channel-$n.log" --kernel "$out/bench-channel.bin"
done
for config in "${growth[@]}"; do
    for n in 1 2; do
        step "growth: $config run $n"
        run_qemu "$out/$config-$n.log" --kernel "$out/$config.bin"
    done
done
# The benchmark and the interference run twice each, the growth runs once
# (their untraced runs, twice, check the victim's figures).
for run in bench:1 bench:2 interference:1 interference:2 bench-growth-1:1 bench-growth-2:1 \
           bench-growth-3:1 bench-growth-4:1; do
    what=${run%:*} n=${run#*:}
    step "$what run with the instruction trace $n"
    status=0
    run_traced "$what" "$n" filtered || status=$?
    if [ "$status" -eq 3 ]; then
        step "again, without the trace filter (slower)"
        status=0
        run_traced "$what" "$n" full || status=$?
    fi
    [ "$status" -eq 0 ] || exit "$status"
done

step "report"
python3 "$root/scripts/bench.py" report "$out" "$root"
# The README's picture: the committed copy, redrawn by every run.
cp "$out/report.svg" "$root/tests/bench-report.svg"
echo "bench.sh: wrote $out/report.json ($(( $(date +%s) - start ))s)" >&2
