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
#             instruction per block), streamed through a parser and never
#             stored: instructions from the hypervisor's EL2 IRQ vector entry
#             to the guest's IRQ vector, on the CPU that takes the interrupt.
#             Its guest figures must equal the bulkhead runs' (same run).
# Image sizes come from target/images/bench.elf, lines of code from src/.
# Prints a Markdown table (also target/bench/report.md) and writes
# target/bench/report.json; the console logs are kept in target/bench/.
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
guest_elf=$root/target/bulkhead/aarch64-unknown-none/release/examples/bench-irq
build_dir=$(ls -td target/bulkhead/aarch64-unknown-none-softfloat/release/build/bulkhead-*/out | sed -n 1p)

# Freeze what is measured: the builds may be redone by someone else meanwhile.
rm -rf "$out"
mkdir -p "$out"
cp "$image" "$out/bench.bin"
cp "${image%.bin}.elf" "$out/bench.elf"
cp "$guest_elf" "$out/bench-irq.elf"
cp "$build_dir/bulkhead_config.rs" "$out/bulkhead_config.rs"
for blob in $(sed -nE 's/.*"\/([^"]+)"\)\).*/\1/p' "$out/bulkhead_config.rs"); do
    cp "$build_dir/$blob" "$out/blob-$blob"
done

# QEMU through the configuration tool scripts/build.sh has just built: the
# board's machine in the measuring setting (bulkhead-config qemu
# --measuring --print shows the command line), with a time limit, stopped
# by its pid. The native run leaves out the virtualization extensions, so
# the guest starts at EL1.
tool=$root/target/bulkhead/release/bulkhead-config
native=(--native --kernel "$out/bench-irq.elf")
bulkhead=(--kernel "$out/bench.bin")

# The parser and the report, Python 3 standard library only.
read -r -d '' helper <<'PY' || true
import bisect, glob, json, os, re, subprocess, sys, tomllib

def fail(message):
    print(f"bench.sh: {message}", file=sys.stderr)
    sys.exit(1)

def symbols(elf, demangle=False):
    """name -> (address, size) of the functions and labels of an ELF."""
    args = ["aarch64-linux-gnu-nm", "-S"] + (["-C"] if demangle else []) + [elf]
    table = {}
    for line in subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) (?:([0-9a-f]+) )?([tTwW]) (.*)$", line)
        if m:
            table.setdefault(m.group(4), (int(m.group(1), 16), int(m.group(2) or "0", 16)))
    return table

def executable_ranges(elf):
    """[start, end) of the ELF's executable LOAD segments."""
    out = subprocess.run(["aarch64-linux-gnu-readelf", "-lW", elf], capture_output=True, text=True, check=True).stdout
    ranges = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            ranges.append((int(f[2], 16), int(f[2], 16) + int(f[5], 16)))
    return ranges

# What the trace leaves out: the hypervisor's bulk boot work. A window that
# calls one of them would be miscounted: the parser then says so and the
# trace is taken again without the filter.
EXCLUDED = ["memset", "rust_primary_main"]

def trace_filter(hyp_elf, guest_elf):
    hyp = symbols(hyp_elf)
    cut = sorted(hyp[name] for name in EXCLUDED if name in hyp)
    ranges = []
    for start, end in executable_ranges(hyp_elf):
        for at, size in cut:
            if start <= at < end:
                if at > start:
                    ranges.append((start, at))
                start = at + size
        if end > start:
            ranges.append((start, end))
    ranges += executable_ranges(guest_elf)
    return ",".join(f"0x{a:x}..0x{b - 1:x}" for a, b in ranges)

def call_sites(hyp_elf):
    """Addresses of direct branches to the excluded functions."""
    out = subprocess.run(["aarch64-linux-gnu-objdump", "-d", hyp_elf], capture_output=True, text=True, check=True).stdout
    names = "|".join(EXCLUDED)
    pattern = re.compile(rf"^\s*([0-9a-f]+):\s+[0-9a-f]{{8}}\s+bl?\s+[0-9a-f]+ <(?:{names})>")
    return {int(m.group(1), 16) for m in map(pattern.match, out.splitlines()) if m}

# Guest handlers that tell which interrupt a window delivered.
HANDLERS = {
    "bench_irq::on_bench_sgi": "sgi",
    "guest_lib::timer::on_interrupt": "timer",
    "bench_irq::on_rtc": "rtc",
}

def trace(log, hyp_elf, guest_elf, config, result, filtered):
    hyp = symbols(hyp_elf)
    guest = symbols(guest_elf)
    gsym = symbols(guest_elf, demangle=True)
    el2_irq = hyp["el2_vectors"][0] + 0x480      # lower EL, AArch64, IRQ
    guest_irq = guest["guest_lib_vectors"][0] + 0x280  # current EL, SP_ELx, IRQ
    handlers = {}
    for name, kind in HANDLERS.items():
        hits = [at for sym, (at, _) in gsym.items() if sym == name or sym.startswith(name + "::")]
        if not hits:
            fail(f"no symbol {name} in {guest_elf}")
        handlers[hits[0]] = kind
    guest_ranges = executable_ranges(guest_elf)
    sites = call_sites(hyp_elf) if filtered else set()
    count = {}        # instructions executed so far, per CPU
    window = {}       # CPU -> [start index, contaminated]
    unclassified = {} # CPU -> index in `windows` of its last window
    windows = []      # [cpu, length, contaminated, kind, guest instructions]
    mismatched = 0
    pending = None

    def execute(cpu, pc):
        n = count.get(cpu, 0) + 1
        count[cpu] = n
        if pc == el2_irq:
            window[cpu] = [n, False, 0]
            unclassified.pop(cpu, None)
            return
        if cpu in window:
            if pc == guest_irq:
                begin, dirty, in_guest = window.pop(cpu)
                unclassified[cpu] = len(windows)
                windows.append([cpu, n - begin, dirty, None, in_guest])
                return
            if any(a <= pc < b for a, b in guest_ranges):
                # Back in the guest before its vector: a guest that waited
                # with IRQs masked unmasks first (counted, and shown apart).
                window[cpu][2] += 1
            elif pc in sites:
                window[cpu][1] = True
        if cpu in unclassified and pc in handlers:
            windows[unclassified.pop(cpu)][3] = handlers[pc]

    with open(log, "rb") as lines:
        for line in lines:
            if line.startswith(b"Trace "):
                if pending:
                    execute(*pending)
                cpu = int(line[6:line.index(b":")])
                pc = int(line[line.index(b"[") + 1:].split(b"/")[1], 16)
                pending = (cpu, pc)
            elif line.startswith(b"Stopped execution"):
                # The block just logged was not executed (icount budget or
                # an interrupt): forget it.
                m = re.search(rb"\[([0-9a-f]+)\]", line)
                if pending and m and int(m.group(1), 16) != pending[1]:
                    mismatched += 1
                pending = None
    if pending:
        execute(*pending)
    if mismatched:
        fail(f"{log}: {mismatched} 'Stopped execution' lines name another block than the one logged before them")
    cpus = tomllib.load(open(config, "rb"))["partition"][0]["cpus"]
    figures = {}
    for name, kind, cpu in [("timer_el2_to_vector", "timer", cpus[0]),
                            ("sgi_target_el2_to_vector", "sgi", cpus[1]),
                            ("passthrough_el2_to_vector", "rtc", cpus[0])]:
        found = [w for w in windows if w[0] == cpu and w[3] == kind]
        if not found:
            fail(f"{log}: no {kind} interrupt delivered on CPU {cpu} in the trace")
        if any(w[2] for w in found):
            print(f"bench.sh: a {kind} window calls {'/'.join(EXCLUDED)}, which the trace filter leaves out", file=sys.stderr)
            sys.exit(3)
        best = min(found, key=lambda w: w[1])
        figures[name] = best[1]
        print(f"trace: {name}: {len(found)} deliveries on CPU {cpu}, {best[1]}..{max(w[1] for w in found)}"
              f" instructions; the shortest has {best[4]} guest instructions before the vector", file=sys.stderr)
    json.dump(figures, open(result, "w"))

def figures_of(log):
    """The guest's `bench: name=value` lines, in order; value None for `-`."""
    figures = {}
    for line in open(log, errors="replace"):
        m = re.search(r"bench: ([a-z0-9_]+)=(\S+)\s*$", line)
        if m:
            value = m.group(2)
            figures[m.group(1)] = None if value == "-" else (float(value) if "." in value else int(value))
    if not figures or not any(line.rstrip().endswith("bench: done") for line in open(log, errors="replace")):
        fail(f"{log}: the guest did not finish (no 'bench: done')")
    return figures

def agree(what, first, second):
    for name in sorted(set(first) | set(second)):
        if first.get(name, "missing") != second.get(name, "missing"):
            fail(f"figure {name} differs between the two {what} runs: {first.get(name, 'missing')} vs {second.get(name, 'missing')}")

def section_sizes(elf):
    out = subprocess.run(["aarch64-linux-gnu-size", "-A", elf], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0].startswith("."):
            sizes[f[0]] = int(f[1])
    return sizes

def guest_blobs(elf, config_rs, blob_dir):
    """Bytes of the guest images and device trees the build embedded."""
    data = open(elf, "rb").read()
    total = 0
    names = re.findall(r'"/([^"]+)"\)\)', open(config_rs).read())
    if not names:
        fail(f"{config_rs}: no embedded blobs found")
    for name in names:
        blob = open(os.path.join(blob_dir, "blob-" + name), "rb").read()
        if data.find(blob) < 0:
            fail(f"{name} is not inside {elf}: the build changed under bench.sh; run it again")
        total += len(blob)
    return total

def lines_of_code(src):
    """Non-blank, non-comment lines of src/**/*.rs and *.S, each .rs file up
    to its #[cfg(test)] module, without src/vgic/regs/tests.rs."""
    total = 0
    for path in sorted(glob.glob(os.path.join(src, "**", "*.rs"), recursive=True) +
                       glob.glob(os.path.join(src, "**", "*.S"), recursive=True)):
        if os.path.relpath(path, src) == os.path.join("vgic", "regs", "tests.rs"):
            continue
        lines = open(path).read().splitlines()
        in_block = False
        for i, line in enumerate(lines):
            text = line.strip()
            if path.endswith(".rs") and text == "#[cfg(test)]":
                rest = [l.strip() for l in lines[i + 1:] if l.strip()]
                if rest and re.match(r"(pub(\([a-z]+\))? )?mod ", rest[0]):
                    break
            if in_block:
                if "*/" not in text:
                    continue
                in_block = False
                text = text.split("*/", 1)[1].strip()
            elif text.startswith("/*"):
                if "*/" in text[2:]:
                    text = text[2:].split("*/", 1)[1].strip()
                else:
                    in_block = True
                    continue
            if text and not text.startswith("//"):
                total += 1
    return total

UNITS = {"exits_per_ipi": "exits", "exits_per_ipi_sender": "exits",
         "traps_per_1000_mask_unmask": "traps"}
# Trace figures, placed after the guest figure they refine.
AFTER = {"timer_cval_to_handler": "timer_el2_to_vector",
         "sgi_target_wfi_to_vector": "sgi_target_el2_to_vector",
         "passthrough_irq_to_handler": "passthrough_el2_to_vector"}

def report(out, root):
    native = [figures_of(f"{out}/native-{i}.log") for i in (1, 2)]
    bulkhead = [figures_of(f"{out}/bulkhead-{i}.log") for i in (1, 2)]
    traced = [figures_of(f"{out}/trace-{i}.log") for i in (1, 2)]
    traces = [json.load(open(f"{out}/trace-{i}.json")) for i in (1, 2)]
    agree("native", *native)
    agree("Bulkhead", *bulkhead)
    agree("traced", *traces)
    for i in (0, 1):
        if traced[i] != bulkhead[0]:
            agree("Bulkhead and traced Bulkhead", bulkhead[0], traced[i])
    native, bulkhead, traces = native[0], bulkhead[0], traces[0]
    if list(native) != list(bulkhead):
        fail("the native and the Bulkhead run printed different figures")
    entries = []
    for name in native:
        entries.append({"name": name, "native": native[name], "bulkhead": bulkhead[name],
                        "unit": UNITS.get(name, "instructions")})
        if name in AFTER:
            # Natively there is no EL2: the figure does not exist.
            entries.append({"name": AFTER[name], "native": None,
                            "bulkhead": traces[AFTER[name]], "unit": "instructions"})
    sizes = section_sizes(f"{out}/bench.elf")
    guests = guest_blobs(f"{out}/bench.elf", f"{out}/bulkhead_config.rs", out)
    image = {"image_text": sizes.get(".text", 0), "image_rodata": sizes.get(".rodata", 0),
             "image_data": sizes.get(".data", 0), "image_guests": guests}
    image["image_hypervisor"] = image["image_text"] + image["image_rodata"] + image["image_data"] - guests
    for name, value in image.items():
        entries.append({"name": name, "native": None, "bulkhead": value, "unit": "bytes"})
    entries.append({"name": "loc_src", "native": None, "bulkhead": lines_of_code(os.path.join(root, "src")),
                    "unit": "lines"})
    json.dump(entries, open(f"{out}/report.json", "w"), indent=2)

    table = open(f"{out}/report.md", "w")

    def row(text):
        print(text)
        table.write(text + "\n")

    def show(v):
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:g}"
    row("| path | native | Bulkhead | overhead | ratio |")
    row("|---|---:|---:|---:|---:|")
    for e in entries:
        path = e["name"] if e["unit"] == "instructions" else f"{e['name']} ({e['unit']})"
        n, b = e["native"], e["bulkhead"]
        overhead = show(b - n) if n is not None and b is not None else "-"
        ratio = "-" if not n or b is None else f"{b / n:,.0f}x" if b / n >= 100 else f"{b / n:.1f}x"
        row(f"| {path} | {show(n)} | {show(b)} | {overhead} | {ratio} |")

if __name__ == "__main__":
    if sys.argv[1] == "filter":
        print(trace_filter(*sys.argv[2:4]))
    elif sys.argv[1] == "trace":
        trace(*sys.argv[2:7], filtered=sys.argv[7] == "filtered")
    elif sys.argv[1] == "report":
        report(*sys.argv[2:4])
PY

# Runs QEMU ("$@": bulkhead-config qemu options) until it exits or `limit`
# seconds pass; its console goes to $1. Fails if it had to be stopped.
run_qemu() {
    local log=$1
    shift
    local status=0
    "$tool" qemu --board qemu-virt --repo-root "$root" --measuring --timeout "$limit" "$@" \
        </dev/null >"$log" 2>"$log.stderr" || status=$?
    case "$status" in
        0) ;;
        124) echo "bench.sh: QEMU stopped at its ${limit}s limit: see $log and $log.stderr" >&2; return 1 ;;
        *) echo "bench.sh: QEMU failed (status $status): see $log and $log.stderr" >&2; return 1 ;;
    esac
}

# A Bulkhead run with the instruction trace streamed through the parser.
# $1 = run number, $2 = "filtered" (leave the boot's bulk work out) or "full".
run_traced() {
    local n=$1 mode=$2 fifo=$out/trace-$1.fifo filter
    rm -f "$fifo"
    mkfifo "$fifo"
    if [ "$mode" = filtered ]; then
        filter=(-dfilter "$(python3 -c "$helper" filter "$out/bench.elf" "$out/bench-irq.elf")")
    else
        filter=()
    fi
    # The parser has a time limit of its own (coreutils timeout stops it by
    # its pid): status 124 if it was stopped.
    timeout "$limit" python3 -c "$helper" trace "$fifo" "$out/bench.elf" "$out/bench-irq.elf" \
        tests/configs/bench.toml "$out/trace-$n.json" "$mode" 2>"$out/trace-$n.parse" &
    local parser=$!
    local status=0
    run_qemu "$out/trace-$n.log" "${bulkhead[@]}" -- -accel tcg,one-insn-per-tb=on \
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
    cat "$out/trace-$n.parse" >&2
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
    step "Bulkhead run with the instruction trace $n"
    status=0
    run_traced "$n" filtered || status=$?
    if [ "$status" -eq 3 ]; then
        step "again, without the trace filter (slower)"
        status=0
        run_traced "$n" full || status=$?
    fi
    [ "$status" -eq 0 ] || exit "$status"
done

step "report"
python3 -c "$helper" report "$out" "$root"
echo "bench.sh: wrote $out/report.json ($(( $(date +%s) - start ))s)" >&2
